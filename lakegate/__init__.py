"""The vocabulary every lakegate package shares: reserved column names, the error tree, the registry.

It imports nothing else of lakegate, so ``connectors``, ``transforms``, ``zones`` and the pipeline core can
all use it without crossing the walls between them (DESIGN.md).
"""
