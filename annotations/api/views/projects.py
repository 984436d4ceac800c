"""Projects and their items (read-only lists) plus labeling an item."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.api.serializers import AnnotationSerializer, ItemSerializer, ProjectSerializer
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
