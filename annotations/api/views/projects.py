"""Projects and their items (read-only lists) plus labeling an item."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.api.serializers import AnnotationSerializer, ItemSerializer, JobSerializer, ProjectSerializer
from annotations.api.views.common import IdCursorPagination, ProjectScopedMixin, query_params
from annotations.models import Item, Label, Project, Role
from annotations.permissions import project_for
from annotations.selectors.items import LABEL_STATES, items_for
from annotations.selectors.projects import projects_for


class ProjectViewSet(viewsets.ReadOnlyModelViewSet):
    """Projects the caller belongs to."""

    serializer_class = ProjectSerializer
    lookup_field = "slug"
    pagination_class = None
    queryset = Project.objects.none()

    def get_queryset(self):
        return projects_for(user=self.request.user)

    def get_object(self) -> Project:
        return project_for(self.request.user, self.kwargs["slug"], Role.ANNOTATOR)


class ItemFilter(serializers.Serializer):
    split = serializers.ChoiceField(choices=Item.Split.choices, required=False)
    label_state = serializers.ChoiceField(choices=LABEL_STATES, required=False)
    q = serializers.CharField(required=False, max_length=200, allow_blank=True)


@extend_schema_view(list=extend_schema(parameters=[ItemFilter]))
class ItemViewSet(ProjectScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Items of a project; filter by ``split``, ``label_state`` and text search ``q``."""

    serializer_class = ItemSerializer
    pagination_class = IdCursorPagination
    queryset = Item.objects.none()

    def get_queryset(self):
        if self.action == "list":
            return items_for(project=self.project, **query_params(ItemFilter, self.request))
        return items_for(project=self.project)


class AnnotationCreateApi(ProjectScopedMixin, APIView):
    """Label an item (the same service as the labeling page)."""

    min_role = Role.ANNOTATOR

    class InputSerializer(serializers.Serializer):
        label = serializers.ChoiceField(choices=Label.choices)
        category = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
        client_token = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)

    @extend_schema(request=InputSerializer, responses={201: AnnotationSerializer})
    def post(self, request, slug: str, item_id: int):
        from annotations.services.labels import annotation_submit

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = get_object_or_404(Item.objects.select_related("project"), pk=item_id, project=self.project)
        annotation = annotation_submit(item=item, user=request.user, role=self.role, **data.validated_data)
        return Response(AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)


class AnnotationUndoApi(ProjectScopedMixin, APIView):
    """Withdraw the caller's most recent label in the project."""

    min_role = Role.ANNOTATOR

    @extend_schema(request=None, responses={200: AnnotationSerializer, 204: None})
    def post(self, request, slug: str):
        from annotations.services.labels import annotation_undo_last

        undo = annotation_undo_last(user=request.user, project=self.project)
        if undo is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(AnnotationSerializer(undo).data)


class SeedSuggestionStartApi(ProjectScopedMixin, APIView):
    """Queue a seed-suggestion job: ``n`` pool items to label first, chosen without labels (admins).

    The job moves its picks from the pool to the seed set; poll it like any job. 409 while another
    seed-suggestion job of the project is queued or running; 400 (field ``n``) on an empty pool.
    """

    min_role = Role.ADMIN

    class InputSerializer(serializers.Serializer):
        n = serializers.IntegerField(min_value=1, max_value=2000, default=200)
        seed = serializers.IntegerField(min_value=0, default=0)

    @extend_schema(request=InputSerializer, responses={202: JobSerializer})
    def post(self, request, slug: str):
        from annotations.services.seeds import seed_suggestion_start

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = seed_suggestion_start(project=self.project, user=request.user, **data.validated_data)
        return Response(JobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)
