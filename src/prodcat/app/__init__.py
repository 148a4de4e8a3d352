"""The web app (``prodcat app MODEL``): explore a catalogue, a model bundle and its predictions.

:mod:`.views` holds the logic as plain functions on frames and manifests (tested directly);
:mod:`.streamlit_app` is the thin Streamlit script that lays them out; :mod:`.command` is the CLI.
"""
