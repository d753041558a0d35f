"""Every deployment of the project, in one module: see deployments.deployments."""
