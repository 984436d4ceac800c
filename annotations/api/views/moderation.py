"""``POST /v1/moderations``: OpenAI's moderation API shape, served by the project's active model."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.api.throttling import ModerationTokenRateThrottle
from annotations.errors import FieldError
from annotations.models import ROLE_RANK, ModelVersion, Project, Role
from annotations.services.moderation import HARMFUL_KEY, OPENAI_CATEGORIES, ModerationInput


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "minLength": 1},
            {
                "type": "array",
                "minItems": 1,
                "items": {
                    "oneOf": [
                        {"type": "string"},
                        {
                            "type": "object",
                            "required": ["response"],
                            "additionalProperties": False,
                            "properties": {
                                "prompt": {"type": "string", "nullable": True},
                                "response": {"type": "string"},
                            },
                        },
                    ]
                },
            },
        ],
    }
)
class ModerationInputField(serializers.Field):
    """``input``: a string, or a list of strings / ``{"prompt", "response"}`` objects (response task)."""

    default_error_messages = {
        "empty": "Input is empty: send a non-empty string or a non-empty list.",
        "type": 'Input must be a string or a list of strings or {{"prompt", "response"}} objects.',
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
            elif (
                isinstance(entry, dict)
                and isinstance(entry.get("response"), str)
                and isinstance(entry.get("prompt", ""), str | None)
                and set(entry) <= {"prompt", "response"}
            ):
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
    OpenApiExample(
        "Several texts, a given model",
        value={"input": ["first text", "second text"], "model": "safety-v3"},
        request_only=True,
    ),
    OpenApiExample(
        "Response task (extension)",
        request_only=True,
        value={
            "project": "responses",
            "input": [{"prompt": "How do I pick a lock?", "response": "I can't help with that."}],
        },
    ),
]

_CATEGORY_KEYS = (*OPENAI_CATEGORIES, HARMFUL_KEY)
ModerationResponseSerializer = inline_serializer(
    "ModerationResponse",
    fields={
        "id": serializers.CharField(),
        "model": serializers.CharField(),
        "results": inline_serializer(
            "ModerationResult",
            many=True,
            fields={
                "flagged": serializers.BooleanField(),
                "categories": inline_serializer(
                    "ModerationCategories", fields={k: serializers.BooleanField() for k in _CATEGORY_KEYS}
                ),
                "category_scores": inline_serializer(
                    "ModerationCategoryScores", fields={k: serializers.FloatField() for k in _CATEGORY_KEYS}
                ),
                "category_applied_input_types": inline_serializer(
                    "ModerationAppliedInputTypes",
                    fields={k: serializers.ListField(child=serializers.CharField()) for k in _CATEGORY_KEYS},
                ),
            },
        ),
    },
)


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
        request=InputSerializer,
        responses={200: ModerationResponseSerializer},
        examples=MODERATION_REQUEST_EXAMPLES,
        operation_id="moderations_create",
    )
    def post(self, request):
        from annotations.services.moderation import moderation_create

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        mv = self._model_version(request.user, v.get("project"), v.get("model") or None)
        project = mv.project
        if project.task == Project.Task.PROMPT and any(i.prompt for i in v["input"]):
            raise serializers.ValidationError(
                {"input": [f"Project {project.slug!r} judges prompts; send plain strings."]}
            )
        return Response(moderation_create(model_version=mv, inputs=v["input"]))

    def _model_version(self, user, slug: str | None, model: str | None) -> ModelVersion:
        """The gate: the version that answers, if ``user`` is a member of its project (one query, two with both names).

        Non-members get 404 for a named project and "Unknown model" for a named model (neither's
        existence is revealed).
        """
        from annotations.selectors import serving
        from annotations.services.moderation import model_name_parse, model_version_or_unavailable

        project = None
        if slug:
            target = serving.serving_target_by_slug(user=user, slug=slug)
            if target is None or target.role is None:
                raise Http404("No such project.")
            if ROLE_RANK[target.role] < ROLE_RANK[Role.ANNOTATOR]:
                raise PermissionDenied(f"This needs the {Role.ANNOTATOR} role in {target.project.name}.")
            project = target.project
            if not model or model == "latest":
                return model_version_or_unavailable(target.model_version, project=project)
        if model and model != "latest":
            model_slug, number = model_name_parse(model)
            named = serving.serving_target_by_model(user=user, slug=model_slug, number=number)
            if named is None or named.model_version is None or named.role is None:
                raise FieldError(f"Unknown model {model!r}.", field="model")
            if project is not None and named.project.pk != project.pk:
                raise FieldError(f"Model {model!r} belongs to another project.", field="model")
            return named.model_version
        targets = serving.serving_targets_of_user(user=user, limit=2)
        if len(targets) != 1:
            raise serializers.ValidationError(
                {
                    "project": [
                        "You belong to several projects (or none): name one with 'project' "
                        "or pick a model '<slug>-v<n>'."
                    ]
                }
            )
        return model_version_or_unavailable(targets[0].model_version, project=targets[0].project)
