"""Views of the web UI: thin, they validate forms and call services and selectors."""
