"""The web app behind ``midilm app``: a thin Gradio layer over sampling and rendering.

``forms`` turns page values into midilm settings and checks uploads,
``checkpoints`` offers and caches models, ``pieces`` generates and writes the
samples, and ``ui`` (the only module that imports gradio) lays out the page
and wires it to them.
"""
