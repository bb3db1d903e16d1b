"""The studio: a local web app (FastAPI) over a persistent job queue and gallery.

``create_app(settings)`` builds the web app; ``muselab.studio.worker`` runs queued jobs in a
separate process. New capabilities plug in as one module each: a job kind registered with
:func:`muselab.studio.registry.register_job` and, when interactive, a router.
"""
