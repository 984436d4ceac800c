from django.urls import path

from annotations.views import projects

app_name = "annotations"

urlpatterns = [
    path("", projects.home, name="home"),
    path("p/<slug:slug>/", projects.project_dashboard, name="project_dashboard"),
    path("p/<slug:slug>/guidelines/", projects.project_guidelines, name="project_guidelines"),
    path("p/<slug:slug>/import/", projects.item_import, name="item_import"),
    path("p/<slug:slug>/import/jobs/", projects.import_jobs, name="import_jobs"),
]
