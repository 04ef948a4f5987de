"""What every area's routes and pages share: request dependencies and page helpers."""
