"""Write official-format DreamerV3 log directories with the official code's own config and logger.

    .venv-official/bin/python tests/results/data/official_logdirs/write_logdirs.py

Run in the official venv (`python -m agents.official.setup`): the config comes from the official
`elements.Config` with our configs.yaml (as `dreamerv3/main.py` merges and saves it), metrics and scores
from `dreamerv3.main.make_logger` (jsonl output: `step` = agent steps x env.<suite>.repeat). The episode
returns are made up (no official env ships in the sdist); the files' format is the official code's.
"""

import pathlib
import shutil

import elements
import ruamel.yaml as yaml

import dreamerv3
from dreamerv3 import main

HERE = pathlib.Path(__file__).parent
RUNS = {
    # folder: (configs, flags, episodes as (agent step, return, length), metrics writes at agent steps)
    "crafter_reward_size1m": (
        ["crafter", "size1m", "cpu"], {"run.steps": 2500, "run.log_every": 30},
        [(700, 2.1, 700), (1500, 3.1, 800), (2300, 4.1, 800)], [600, 1200, 1800, 2400]),
    "atari100k_pong_size1m": (
        ["atari100k", "size1m", "cpu"], {"task": "atari100k_pong", "seed": 1},
        [(s, -21.0 + s / 11000, 900) for s in range(9000, 110000, 9000)] + [(98500, -11.0, 900)],
        list(range(10000, 110001, 10000))),
}


def write(folder: str, names: list[str], flags: dict, episodes: list, writes: list) -> None:
    configs = yaml.YAML(typ="safe").load((pathlib.Path(dreamerv3.__file__).parent / "configs.yaml").read_text())
    config = elements.Config(configs["defaults"])
    for name in names:
        config = config.update(configs[name])
    logdir = HERE / folder
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir()
    config = config.update(flags).update({"logdir": "logdir", "logger.outputs": ["jsonl"]})
    config.save(logdir / "config.yaml")
    logger = main.make_logger(config.update(logdir=str(logdir)))
    events = sorted([(s, "episode", (r, n)) for s, r, n in episodes] + [(s, "write", None) for s in writes])
    for step, kind, value in events:
        logger.step.value = step
        if kind == "episode":
            logger.add({"score": value[0], "length": float(value[1])}, prefix="episode")
        else:
            logger.add({"train/loss/rew": 1.0 / step, "fps/policy": 30.0})
            logger.write()
    logger.close()


if __name__ == "__main__":
    for folder, run in RUNS.items():
        write(folder, *run)
