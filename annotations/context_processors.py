from annotations.permissions import role_in


def roles(request):
    """``project_role`` for templates rendered under a project (menus only; views enforce)."""
    project = getattr(request, "project", None)
    if project is None or not hasattr(request, "user"):
        return {}
    return {"project_role": role_in(request.user, project)}
