"""Indexer: sources, crawling, item storage, FAISS indexes, search."""
