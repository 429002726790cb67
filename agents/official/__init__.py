"""The official DreamerV3 code (`dreamer==3.3.1` on the package index), obtained and run beside ours.

Nothing of the official code lives in this repository: `python -m agents.official.setup` downloads
the sdist, checks its hash, extracts it under `.official/` and builds `.venv-official` for it;
`configs.py` holds the config it needs (its sdist ships none). `agent.py` (`agent=dreamerv3_official`)
runs the official agent behind our Agent protocol through `server.py` in that venv (README.md).
"""
