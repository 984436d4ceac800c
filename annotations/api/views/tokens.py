"""API tokens: list what the caller may see, create (key shown once), revoke."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.api.serializers import ApiTokenSerializer
from annotations.api.views.common import NewestCursorPagination
from annotations.models import ApiToken
from annotations.selectors.tokens import tokens_visible_to


class ApiTokenViewSet(viewsets.ReadOnlyModelViewSet):
    """Your tokens, plus (as a project admin) those of the members of your projects."""

    serializer_class = ApiTokenSerializer
    pagination_class = NewestCursorPagination
    queryset = ApiToken.objects.none()

    def get_queryset(self):
        return tokens_visible_to(user=self.request.user)


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    key = serializers.CharField(read_only=True, help_text="The secret; shown only in this response.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiTokenCreateApi(APIView):
    """Create a token for yourself, or (project admins) for a member of only your projects."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        user = serializers.CharField(required=False, help_text="Username; defaults to the caller.")
        expires_in_days = serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=1,
            max_value=3650,
            help_text="Days until the token stops working; empty = never.",
        )
        scope = serializers.ChoiceField(
            choices=ApiToken.Scope.choices,
            default=ApiToken.Scope.READ_WRITE,
            help_text="read: safe methods and /v1/moderations only.",
        )

    @extend_schema(request=InputSerializer, responses={201: ApiTokenCreatedSerializer})
    def post(self, request):
        from annotations.services.tokens import api_token_create

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data.get("user")
        user = request.user
        if username and username != request.user.get_username():
            user = get_user_model().objects.filter(username=username, is_active=True).first()
            if user is None:
                raise serializers.ValidationError({"user": ["No such active user."]})
        issued = api_token_create(
            user=user,
            name=data.validated_data["name"],
            created_by=request.user,
            expires_in_days=data.validated_data.get("expires_in_days"),
            scope=data.validated_data["scope"],
        )
        out = ApiTokenSerializer(issued.token).data
        out["key"] = issued.key
        return Response(out, status=status.HTTP_201_CREATED)


class ApiTokenRevokeApi(APIView):
    """Revoke a token; it stops working at once and stays listed for audit."""

    @extend_schema(request=None, responses={200: ApiTokenSerializer})
    def post(self, request, token_id: int):
        from annotations.services.tokens import api_token_revoke

        token = get_object_or_404(tokens_visible_to(user=request.user), pk=token_id)
        token = api_token_revoke(token=token, user=request.user)
        return Response(ApiTokenSerializer(token).data)
