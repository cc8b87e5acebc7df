"""CoPL, the collaborative reward layer: user-response graph, GNN user embeddings, a personalized
reward model with a mixture of LoRA experts, cold start for unseen users, and baselines.

Modules: ``data`` (the JSONL preference file), ``ufp`` (UF-P-like data from the offline world),
``graph`` (signed bipartite graph), ``gnn`` (user/response embeddings), ``reward`` (the MoLE reward
model), ``coldstart`` (unseen users), ``uses`` (best-of-n, similar users, starting eta),
``baselines`` (global, per-user and low-rank rewards). Only ``data`` and ``ufp`` are torch-free.
"""
