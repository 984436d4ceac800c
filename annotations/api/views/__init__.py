"""REST API views, one module per resource; actions are one APIView each calling a service."""
