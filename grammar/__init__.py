"""bpm.grammar: the .bpm language's lark grammar (data only: bpm.lark)."""
