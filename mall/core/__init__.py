"""The kernel: what every area and process shares. It imports no business area."""
