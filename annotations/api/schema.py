"""OpenAPI schema tweaks: unique component names for the nested Input/Output serializers."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema


class UmbraAutoSchema(AutoSchema):
    """Names ``SomethingApi.InputSerializer`` as ``SomethingInput`` (nested names collide otherwise)."""

    def get_serializer_name(self, serializer, direction):
        cls = serializer.__class__
        parts = cls.__qualname__.split(".")
        if len(parts) >= 2 and parts[-1] in ("InputSerializer", "OutputSerializer"):
            owner = parts[-2].lstrip("_").removesuffix("Api")
            return owner + parts[-1].removesuffix("Serializer")
        return super().get_serializer_name(serializer, direction)
