"""The registered reproduction tables (module paths only: importing this is cheap)."""

from agentlab.reproduce import register_table

register_table("offline", "agentlab.reproduce.tables.offline")
register_table("imitation", "agentlab.reproduce.tables.imitation")
register_table("mbrl", "agentlab.reproduce.tables.mbrl")
register_table("sso", "agentlab.reproduce.tables.sso")
register_table("ucip", "agentlab.reproduce.tables.ucip")
register_table("selftest", "agentlab.reproduce.tables.selftest")
