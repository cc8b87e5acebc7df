"""Settings of the learning layers, star-imported by :mod:`attune.settings`: per-user fits and
preference vectors (apps.adapters), CIPHER memory (apps.memory), CoPL (apps.collab) and layer
arbitration (apps.generation.arbitration). Their folders (``ATTUNE_ADAPTER_ROOT``,
``ATTUNE_COPL_ROOT``) stay in :mod:`attune.settings`, beside the var dir they default into.
Read from the environment, like the rest (see ``.env.example``)."""

from __future__ import annotations

import os

from attune.env import env_bool, env_int

# Per-user LoRA adapters and preference vectors (apps.adapters, workers.adapters).
ATTUNE_FIT_MIN_PAIRS = env_int("ATTUNE_FIT_MIN_PAIRS", 8)  # fewer: 409 (or KTO from thumbs)
ATTUNE_FIT_MIN_THUMBS = env_int("ATTUNE_FIT_MIN_THUMBS", 16)
ATTUNE_FIT_TRIGGER_PAIRS = env_int("ATTUNE_FIT_TRIGGER_PAIRS", 16)  # new pairs that start a fit
ATTUNE_FIT_MAX_PAIRS = env_int("ATTUNE_FIT_MAX_PAIRS", 32)  # a fit reads the newest (README)
ATTUNE_VECTOR_PAIRS = env_int("ATTUNE_VECTOR_PAIRS", 64)  # pairs per pole of a preference vector
ATTUNE_MAX_ABS_ETA = float(os.environ.get("ATTUNE_MAX_ABS_ETA", "2"))  # text degrades beyond
ATTUNE_MAX_FITTED_ETA = float(os.environ.get("ATTUNE_MAX_FITTED_ETA", "1.5"))
ATTUNE_FIT = {
    "rank": env_int("ATTUNE_FIT_RANK", 8),
    "alpha": env_int("ATTUNE_FIT_ALPHA", 16),
    "learning_rate": float(os.environ.get("ATTUNE_FIT_LEARNING_RATE", "2e-3")),
    "epochs": env_int("ATTUNE_FIT_EPOCHS", 4),
    "batch_size": env_int("ATTUNE_FIT_BATCH_SIZE", 8),
    "beta": float(os.environ.get("ATTUNE_FIT_BETA", "0.1")),
    "sft_weight": float(os.environ.get("ATTUNE_FIT_SFT_WEIGHT", "1.0")),  # RPO term on chosen
}
ATTUNE_VECTOR_FIT = {  # a preference vector pole's fit: ATTUNE_FIT with these on top
    "learning_rate": float(os.environ.get("ATTUNE_VECTOR_LEARNING_RATE", "2e-3")),
    "epochs": env_int("ATTUNE_VECTOR_EPOCHS", 2),
    "sft_weight": float(os.environ.get("ATTUNE_VECTOR_SFT_WEIGHT", "1.0")),
}

# CIPHER memory (apps.memory): preference inference from edits, retrieval at generation.
ATTUNE_INFERENCE_BACKEND = os.environ.get("ATTUNE_INFERENCE_BACKEND", "offline")  # offline | llm
ATTUNE_LLM_BASE_URL = os.environ.get("ATTUNE_LLM_BASE_URL", "")  # OpenAI-compatible, e.g. …/v1
ATTUNE_LLM_MODEL = os.environ.get("ATTUNE_LLM_MODEL", "")
ATTUNE_LLM_API_KEY = os.environ.get("ATTUNE_LLM_API_KEY", "")
ATTUNE_LLM_TIMEOUT_SECONDS = float(os.environ.get("ATTUNE_LLM_TIMEOUT_SECONDS", "30"))
ATTUNE_LLM_MAX_TOKENS = env_int("ATTUNE_LLM_MAX_TOKENS", 64)
ATTUNE_INFERENCE_MAX_RETRIES = env_int("ATTUNE_INFERENCE_MAX_RETRIES", 6)
ATTUNE_MAX_PREFERENCE_CHARS = env_int("ATTUNE_MAX_PREFERENCE_CHARS", 500)
ATTUNE_MEMORY_TOP_K = env_int("ATTUNE_MEMORY_TOP_K", 5)
ATTUNE_MEMORY_CANDIDATES = env_int("ATTUNE_MEMORY_CANDIDATES", 100)  # nearest_in_database only
# Each user's memory vectors held by the serving process (apps.memory.cache), LRU in bytes.
ATTUNE_MEMORY_CACHE_BYTES = env_int("ATTUNE_MEMORY_CACHE_BYTES", 256 * 1024 * 1024)
# A preference the user wrote outranks the others within this cosine distance of the query.
ATTUNE_MEMORY_PRECEDENCE_DISTANCE = float(
    os.environ.get("ATTUNE_MEMORY_PRECEDENCE_DISTANCE", "0.5")
)
# A new entry replaces contradicting older ones among its k nearest within this cosine distance
# (apps.memory.cipher.superseding); learned entries vote only within NEAR of a query when any
# are (apps.memory.cipher.within_reach; 2 turns it off). Both measured in the README (memory).
ATTUNE_MEMORY_SUPERSEDE_DISTANCE = float(os.environ.get("ATTUNE_MEMORY_SUPERSEDE_DISTANCE", "0.5"))
ATTUNE_MEMORY_NEAR_DISTANCE = float(os.environ.get("ATTUNE_MEMORY_NEAR_DISTANCE", "0.7"))

# CoPL collaborative reward (apps.collab, workers.collab): versioned user embeddings (pgvector,
# 64 dims) and the mixture-of-LoRA reward model, trained together on the gpu queue.
ATTUNE_COPL_MIN_PAIRS = env_int("ATTUNE_COPL_MIN_PAIRS", 64)  # pairs of all users; fewer: 409
ATTUNE_COPL_MIN_USERS = env_int("ATTUNE_COPL_MIN_USERS", 4)  # users with pairs; fewer: 409
ATTUNE_COPL_TRIGGER_PAIRS = env_int("ATTUNE_COPL_TRIGGER_PAIRS", 0)  # new pairs to retrain; 0: off
ATTUNE_COPL_HELDOUT_SHARE = float(os.environ.get("ATTUNE_COPL_HELDOUT_SHARE", "0.1"))
# At size (workers/collab/jobs.py): pairs per user in the graph, reward-model pairs shared fairly
# across users, train and held-out pairs scored; 0 removes a cap.
ATTUNE_COPL_MAX_USER_PAIRS = env_int("ATTUNE_COPL_MAX_USER_PAIRS", 256)
ATTUNE_COPL_MAX_REWARD_PAIRS = env_int("ATTUNE_COPL_MAX_REWARD_PAIRS", 4096)
ATTUNE_COPL_MAX_SCORED_PAIRS = env_int("ATTUNE_COPL_MAX_SCORED_PAIRS", 1024)
ATTUNE_COPL_DEVICE = os.environ.get("ATTUNE_COPL_DEVICE", "auto")  # auto | cpu | cuda | cuda:N
ATTUNE_COPL_GNN = {
    "layers": env_int("ATTUNE_COPL_GNN_LAYERS", 4),
    "edge_dropout": 0.1,
    "epochs": env_int("ATTUNE_COPL_GNN_EPOCHS", 150),
    "lr": 5e-3,
    "seed": 0,
}
ATTUNE_COPL_REWARD = {
    "backbone": os.environ.get("ATTUNE_COPL_BACKBONE", "attune/all-MiniLM-L6-v2"),
    "n_experts": env_int("ATTUNE_COPL_EXPERTS", 8),
    "rank": 8,
    "layers": os.environ.get("ATTUNE_COPL_REWARD_LAYERS", "5"),  # comma list, or "all"
    "max_length": 64,
    "include_prompt": env_bool("ATTUNE_COPL_INCLUDE_PROMPT"),
}
ATTUNE_COPL_TRAIN = {
    "epochs": env_int("ATTUNE_COPL_REWARD_EPOCHS", 1),
    "batch_size": 32,
    "lr": 5e-3,
    "seed": 0,
}
ATTUNE_COPL_NEIGHBORS = env_int("ATTUNE_COPL_NEIGHBORS", 10)  # for cold start and starting η
ATTUNE_COPL_TAU = float(os.environ.get("ATTUNE_COPL_TAU", "0.07"))  # softmax temperature
ATTUNE_COPL_SIMILAR_MIN = float(os.environ.get("ATTUNE_COPL_SIMILAR_MIN", "0.5"))  # cosine
ATTUNE_COPL_MAX_STARTING_ETA = float(os.environ.get("ATTUNE_COPL_MAX_STARTING_ETA", "1"))

# Layer arbitration (apps.generation.arbitration): per user, the weights layers (adapter,
# vectors) apply only where the edit cost that followed says they help.
ATTUNE_ARBITRATION = env_bool("ATTUNE_ARBITRATION", True)
ATTUNE_ARBITRATION_EXPLORE = float(os.environ.get("ATTUNE_ARBITRATION_EXPLORE", "0.1"))
ATTUNE_ARBITRATION_MIN_EVIDENCE = env_int("ATTUNE_ARBITRATION_MIN_EVIDENCE", 3)  # answers per arm
ATTUNE_ARBITRATION_WINDOW = env_int("ATTUNE_ARBITRATION_WINDOW", 12)  # newest answers per arm
