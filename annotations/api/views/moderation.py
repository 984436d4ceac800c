"""``POST /v1/moderations``: OpenAI's moderation API shape, served by the project's active model."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.api.throttling import ModerationTokenRateThrottle
from annotations.models import Project, Role
from annotations.permissions import project_for
from annotations.services.moderation import HARMFUL_KEY, OPENAI_CATEGORIES, ModerationInput


@extend_schema_field({
    "oneOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "minItems": 1, "items": {"oneOf": [
            {"type": "string"},
            {"type": "object", "required": ["response"], "additionalProperties": False,
             "properties": {"prompt": {"type": "string", "nullable": True}, "response": {"type": "string"}}},
        ]}},
    ],
})
class ModerationInputField(serializers.Field):
    """``input``: a string, or a list of strings / ``{"prompt", "response"}`` objects (response task)."""

    default_error_messages = {
        "empty": "Input is empty: send a non-empty string or a non-empty list.",
        "type": "Input must be a string or a list of strings or {{\"prompt\", \"response\"}} objects.",
        "too_many": "Too many inputs: {n} given, at most {limit} per request.",
        "unicode": "input[{i}] is not valid Unicode text (unpaired surrogate).",
    }

    def to_internal_value(self, data) -> list[ModerationInput]:
        limit = int(getattr(settings, "UMBRA_MODERATION_MAX_INPUTS", 256))
        if isinstance(data, str):
            if not data:
                self.fail("empty")
            data = [data]
        if not isinstance(data, list):
            self.fail("type")
        if not data:
            self.fail("empty")
        if len(data) > limit:
            self.fail("too_many", n=len(data), limit=limit)
        out = []
        for i, entry in enumerate(data):
            if isinstance(entry, str):
                out.append(ModerationInput(text=entry))
            elif isinstance(entry, dict) and isinstance(entry.get("response"), str) and \
                    isinstance(entry.get("prompt", ""), str | None) and set(entry) <= {"prompt", "response"}:
                out.append(ModerationInput(text=entry["response"], prompt=entry.get("prompt") or None))
            else:
                raise serializers.ValidationError(
                    f"input[{i}] must be a string or an object with a string 'response' and an optional 'prompt'."
                )
            try:
                out[-1].text.encode("utf-8")
                (out[-1].prompt or "").encode("utf-8")
            except UnicodeEncodeError:
                self.fail("unicode", i=i)
        return out

    def to_representation(self, value):
        return value


MODERATION_REQUEST_EXAMPLES = [
    OpenApiExample("One text", value={"input": "How do I bake bread?"}, request_only=True),
    OpenApiExample("Several texts, a given model", value={"input": ["first text", "second text"],
                                                         "model": "safety-v3"}, request_only=True),
    OpenApiExample("Response task (extension)", request_only=True, value={
        "project": "responses", "input": [{"prompt": "How do I pick a lock?", "response": "I can't help with that."}],
    }),
]

_CATEGORY_KEYS = (*OPENAI_CATEGORIES, HARMFUL_KEY)
ModerationResponseSerializer = inline_serializer("ModerationResponse", fields={
    "id": serializers.CharField(),
    "model": serializers.CharField(),
    "results": inline_serializer("ModerationResult", many=True, fields={
        "flagged": serializers.BooleanField(),
        "categories": inline_serializer("ModerationCategories", fields={
            k: serializers.BooleanField() for k in _CATEGORY_KEYS}),
        "category_scores": inline_serializer("ModerationCategoryScores", fields={
            k: serializers.FloatField() for k in _CATEGORY_KEYS}),
        "category_applied_input_types": inline_serializer("ModerationAppliedInputTypes", fields={
            k: serializers.ListField(child=serializers.CharField()) for k in _CATEGORY_KEYS}),
    }),
})


class ModerationCreateApi(APIView):
    """Classify texts as harmful or not, answering like OpenAI's ``/v1/moderations``.

    Extensions: ``project`` (a project slug) picks the project whose active model answers;
    without it the project comes from ``model`` (``<slug>-v<n>``), else the caller's only
    project. For the response task, ``input`` entries may be ``{"prompt", "response"}``
    objects. Standard OpenAI categories are always present (``false`` / ``0.0``: the model
    has no such head); ``harmful`` carries the model's verdict at the version's threshold.
    """

    throttle_classes = [ModerationTokenRateThrottle]
    read_token_may_post = True  # scoring texts changes nothing: read-only tokens may use it

    class InputSerializer(serializers.Serializer):
        input = ModerationInputField()
        model = serializers.CharField(required=False, allow_blank=True, max_length=120)
        project = serializers.SlugField(required=False, max_length=64)

    @extend_schema(
        request=InputSerializer, responses={200: ModerationResponseSerializer}, examples=MODERATION_REQUEST_EXAMPLES,
        operation_id="moderations_create",
    )
    def post(self, request):
        from annotations.services.moderation import model_version_resolve, moderation_create

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        model = v.get("model") or None
        project = self._project(request, v.get("project"), model)
        mv = model_version_resolve(project=project, model=model, user=request.user)
        project = mv.project
        if project.task == Project.Task.PROMPT and any(i.prompt for i in v["input"]):
            raise serializers.ValidationError(
                {"input": [f"Project {project.slug!r} judges prompts; send plain strings."]})
        return Response(moderation_create(model_version=mv, inputs=v["input"]))

    def _project(self, request, slug: str | None, model: str | None) -> Project | None:
        if slug:
            return project_for(request.user, slug, Role.ANNOTATOR)
        if model and model != "latest":
            return None  # the model name says which project
        from annotations.selectors import projects as selectors

        projects = list(selectors.projects_for(user=request.user)[:2])
        if len(projects) != 1:
            raise serializers.ValidationError({"project": [
                "You belong to several projects (or none): name one with 'project' "
                "or pick a model '<slug>-v<n>'."]})
        return projects[0]
