"""The built-in reproduction tables; the registry of names is ``agentlab.reproduce.TABLES``."""
