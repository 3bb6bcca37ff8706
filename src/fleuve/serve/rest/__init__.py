"""REST routers: Dremio API v3, the ingestion API, and Fleuve's own endpoints."""
