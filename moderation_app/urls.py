from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotations.api.views.moderation import ModerationCreateApi

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its init script from a URL: no inline <script> (strict CSP).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="annotations/api_docs.html"),
        name="api-docs",
    ),
    path("api/", include("annotations.api.urls")),
    path("v1/moderations", ModerationCreateApi.as_view(), name="moderations"),
    path("", include("annotations.urls")),
]

# Styled error pages that keep the navigation and say why (annotations.views.error_pages).
handler403 = "annotations.views.error_pages.permission_denied"
handler404 = "annotations.views.error_pages.page_not_found"
handler500 = "annotations.views.error_pages.server_error"
