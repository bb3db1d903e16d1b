"""Built-in job kinds (each module registers one with ``register_job``)."""
