"""The bottom layer: errors, argument checks, image input, progress, statistics, oneDNN loading.

Nothing here imports from the rest of fxplain (a test enforces it), so every
layer above may use it.
"""
