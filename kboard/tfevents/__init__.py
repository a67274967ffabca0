"""The event-file format: record framing, protobuf builders, normalisation and fast decoding.

Nothing here knows about runs, the store or HTTP; it turns bytes into normalised values
(:mod:`kboard.tfevents.events`) and values into bytes (:mod:`kboard.tfevents.protos`).
"""
