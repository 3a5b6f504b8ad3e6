"""The sample app is a template copied into a throwaway folder, not a test of this project."""

collect_ignore = ["sample_app"]
