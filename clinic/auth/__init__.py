"""Login, sessions kept on the server, roles and the access checks every view uses."""
