"""rsgui: content-based retrieval of multispectral satellite tiles with learned binary hash codes.

The package is layered; each layer imports only the ones before it (``tests/test_layers.py``):

1. ``errors``, ``progress`` (the job protocol), ``atomic``, ``paths``, ``safeload``;
2. tiles: ``bands``, ``tiles``, ``geo``, ``geotiff``;
3. archive reading: ``listing``, ``tiff_header``, ``image_header``, ``manifest`` (the cache),
   ``archive``, ``demo``;
4. codes: ``codes``, ``hamming``, ``cosine``, ``index_store``, ``shards``, ``mih``, ``ranking``,
   ``metrics``, ``features``, ``projection``;
5. ``training/`` (a sibling package, torch only);
6. ``encoders`` (the method registry and one adapter per family);
7. ``services`` (index, search, train, generate, evaluate);
8. ``cli``, ``app``, ``experiments``, which call the services.
"""

__version__ = "0.1.0"
