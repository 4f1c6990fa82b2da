"""The shared base every other package may import, and which imports none of them.

One home for each fact the parts must agree on: user-facing errors (`common.errors`),
the `$R2REC_HOME` folder layout (`common.paths`), files and folders written whole
(`common.files`) and the id rule (`common.ids`).
"""
