"""The ingest pipeline, one role per module, read top-down:

- ``batch``: what flows between stages (``EncodedItems``, its row codec, the summary);
- ``reader``: the items to encode, in id order;
- ``local``: the encode stage in this process (``local_stage``, ``encode_rows``);
- ``ray_stage``: the same stage on Ray actors (the ``distributed`` extra);
- ``writer``: save the stores, then mark the items;
- ``reconcile``: make database and indexes agree first;
- ``runner``: ``run_ingest`` / ``rebuild_indexes``, handed their encode stage;
- ``staged``: the same pipeline cut for many workers (claim, encode, stage; one writer).
"""
