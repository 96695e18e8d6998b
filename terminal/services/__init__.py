"""The service layer: every operation that reads or changes data for a view or command."""
