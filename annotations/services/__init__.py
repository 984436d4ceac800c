"""Write-side business logic, one module per sub-domain (HackSoft services).

Services are keyword-only functions named ``<entity>_<action>``; views, serializers and
tasks call them and hold no business rules of their own.
"""
