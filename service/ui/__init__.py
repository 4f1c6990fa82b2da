"""The inspection page: /ui (server-rendered HTML, one vanilla script, one stylesheet)."""
