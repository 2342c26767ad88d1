"""HTTP views, one blueprint per module. Views parse the request, call services, commit, render."""
