"""Many runs from one command: configs x ``--set`` values x seeds, on this machine or on Slurm.

    streamvae sweep configs/split_fashion/finetune.yaml configs/split_fashion/reservoir.yaml \\
        --seeds 3 --set learner.lr=1e-4,3e-4 --set budget=fast --jobs 2 --out runs/lr-sweep

Every run is an ordinary ``streamvae run`` in a process of its own, in the directory
``DIR/<config name>/<key=value>/.../seed=<s>`` (only ``--set`` keys given several values name a
folder), with its output appended to ``run.log`` there. Re-running the command skips finished runs
(``results.json``) and resumes interrupted ones from their checkpoint (``streamvae run --resume``);
a failed run is reported with its log and does not stop the others. At the end ``DIR/summary.md``
and ``DIR/summary.csv`` hold one row per configuration (the runs that differ only in seed) with the
mean, standard deviation and number of seeds of every headline metric.

Executors: ``local`` runs ``--jobs J`` processes at once with ``threads = cores // J`` (never more
threads than cores); ``slurm`` submits one job array through submitit (``pip install
'streamvae[slurm]'``), each job running the same :func:`execute` as the local executor.
"""
from __future__ import annotations

import itertools
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .config import flatten
from .errors import ConfigError
from .rundir import writer_pid

LOG = "run.log"  # each run's stdout + stderr, appended to by every attempt
RUNTIME_FIELDS = ("threads", "progress")  # set by the sweep per machine: not part of what a run is
SWEEP_OWNS = {"seed": "use --seeds N (and --first-seed)",
              "threads": "the sweep sets it: cores // --jobs locally, --cpus-per-task on Slurm"}


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid."""

    name: str  # folder under the sweep directory, e.g. "split_fashion-reservoir/learner.lr=3e-4/seed=1"
    group: str  # the name without its seed folder: the runs of one group differ only in seed
    config: str  # the YAML file (absolute path)
    overrides: tuple[str, ...]  # this run's --set values, "seed=<s>" last
    seed: int
    expected: dict = field(default_factory=dict, compare=False, repr=False)  # resolved config minus RUNTIME_FIELDS


@dataclass(frozen=True)
class SlurmOptions:
    """What each Slurm job asks for (submitit's AutoExecutor parameters)."""

    partition: str | None = None
    time_min: int = 720  # wall-clock limit per run (minutes)
    cpus_per_task: int = 4  # also the run's torch threads
    gpus: int = 0  # GPUs per job (runs pick CUDA with device=auto or device=cuda)
    mem_gb: float | None = None  # memory per job; None = the partition's default
    array_parallelism: int = 64  # runs of the array running at once
    extra: tuple[str, ...] = ()  # more sbatch options, KEY=VALUE (e.g. account=abc, qos=high)
    setup: tuple[str, ...] = ()  # shell lines run before each job (e.g. "module load cuda")
    cluster: str = "slurm"  # slurm | local (submitit's local executor: the same path without a cluster)


# ---------------------------------------------------------------------------------------------
# the grid


def split_values(text: str) -> list[str]:
    """The values of one ``--set key=v1,v2``: split at top-level commas only.

    ``"1e-4,3e-4"`` gives two values, ``"[mnist,fashion]"`` one list and ``"[mnist],[mnist,fashion]"``
    two; commas inside brackets, braces, parentheses or quotes stay (``"'a,b'"`` is one string).
    """
    values, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                break
        elif ch == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
    if quote or depth != 0:
        raise ConfigError(f"--set value {text!r} has unbalanced brackets or quotes")
    values.append(text[start:].strip())
    if "" in values:
        raise ConfigError(f"--set value {text!r} has an empty value between commas")
    return values


def parse_sets(sets: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``["learner.lr=1e-4,3e-4", "budget=smoke"]`` -> ``[("learner.lr", ["1e-4", "3e-4"]), ("budget", ["smoke"])]``."""
    out: list[tuple[str, list[str]]] = []
    for text in sets:
        if "=" not in text:
            raise ConfigError(f"--set '{text}' must look like key=value or key=v1,v2 (e.g. learner.lr=1e-4,3e-4)")
        key, raw = (s.strip() for s in text.split("=", 1))
        if key in SWEEP_OWNS:
            raise ConfigError(f"--set {key}=... is not for a sweep: {SWEEP_OWNS[key]}")
        if any(key == k for k, _ in out):
            raise ConfigError(f"--set {key} is given twice; list its values once: {key}=v1,v2")
        values = split_values(raw)
        if len(set(values)) != len(values):
            raise ConfigError(f"--set {key} lists a value twice: {raw}")
        out.append((key, values))
    return out


def _segment(key: str, value: str) -> str:
    """A readable folder name for one override: ``learner.lr=3e-4``, ``stream.datasets=mnist+fashion``."""
    clean = re.sub(r"[^A-Za-z0-9._+=-]+", "-", value.replace(",", "+")).strip("-.") or "_"
    if len(clean) > 60:
        import hashlib

        clean = clean[:50] + "-" + hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{key}={clean}"


def identity(config: dict, ignore: Sequence[str] = RUNTIME_FIELDS) -> dict:
    """A resolved config (``to_dict`` / ``config.yaml``) without the fields the sweep sets per machine."""
    return {k: v for k, v in config.items() if k not in ignore}


def expand(configs: Sequence[str], seeds: Sequence[int], sets: Sequence[str] = (),
           plugins: Sequence[str] = ()) -> list[RunSpec]:
    """Every run of the grid, configs outermost, then the ``--set`` values, then seeds.

    Each run's config is resolved here, so an unknown key or a bad value is one error before anything
    runs (a ``device=cuda`` run is not refused here: on Slurm the GPUs are on the compute nodes).
    """
    from . import config as C
    from . import registry
    from .catalog import config_path

    if not configs:
        raise ConfigError("give at least one config file")
    seeds = list(seeds)
    if not seeds or any(s < 0 for s in seeds):
        raise ConfigError("--seeds must be at least 1 and --first-seed at least 0")
    grid = parse_sets(sets)
    fixed = [f"{k}={vs[0]}" for k, vs in grid if len(vs) == 1]
    varying = [[(k, v, _segment(k, v)) for v in vs] for k, vs in grid if len(vs) > 1]
    for choices in varying:  # two values that clean to one folder name get numbered
        seen: dict[str, int] = {}
        for i, (k, v, seg) in enumerate(choices):
            seen[seg] = seen.get(seg, 0) + 1
            if seen[seg] > 1:
                choices[i] = (k, v, f"{seg}~{seen[seg]}")
    specs: list[RunSpec] = []
    folders: dict[str, str] = {}
    for path in configs:
        path = str(config_path(path).resolve())  # a file, or a shipped name such as split_fashion/ocm
        if path in folders.values():
            raise ConfigError(f"config {path} is given twice")
        name = registry.load_config(path, fixed + [f"seed={seeds[0]}"], plugins).name
        folder, i = name, 2
        while folder in folders:  # two configs with one name
            folder, i = f"{name}-{i}", i + 1
        folders[folder] = path
        for combo in itertools.product(*varying):
            overrides = fixed + [f"{k}={v}" for k, v, _ in combo]
            group = "/".join([folder] + [seg for _, _, seg in combo])
            for seed in seeds:
                ov = tuple(overrides + [f"seed={seed}"])
                cfg = registry.load_config(path, list(ov), plugins)
                specs.append(RunSpec(name=f"{group}/seed={seed}", group=group, config=path, overrides=ov,
                                     seed=seed, expected=identity(C.to_dict(cfg))))
    return specs


# ---------------------------------------------------------------------------------------------
# one run


def run_state(run_dir: Path) -> str:
    """``finished`` (results.json), ``interrupted`` (a checkpoint to resume from) or ``new``."""
    if (run_dir / "results.json").exists():
        return "finished"
    if (run_dir / "checkpoint.pt").exists():
        return "interrupted"
    return "new"


def mismatch(spec: RunSpec, run_dir: Path, ignore: Sequence[str] = RUNTIME_FIELDS) -> str | None:
    """Why ``run_dir`` holds another run than ``spec`` (its config.yaml differs outside the top-level
    fields ``ignore``, which ``spec.expected`` must leave out too), or None."""
    path = run_dir / "config.yaml"
    if not path.exists() or not spec.expected:
        return None
    from .registry import default_config
    from .utils import read_regular

    try:
        have = identity(yaml.safe_load(read_regular(path, 1 << 20, follow_symlinks=False)) or {}, ignore)
    except (yaml.YAMLError, OSError, ValueError, AttributeError, RecursionError):  # ValueError: not a regular file
        return f"{path} is unreadable"
    flat_have, flat_want = flatten(have), flatten(spec.expected)
    # a field added to the code after the run was made is no difference while the grid keeps its default
    defaults = default_config(str(flat_want.get("learner.name", ""))) or {}
    diff = sorted(k for k in set(flat_have) | set(flat_want) if flat_have.get(k) != flat_want.get(k)
                  and not (k not in flat_have and k in defaults and flat_want.get(k) == defaults[k]))
    if not diff:
        return None
    shown = ", ".join(f"{k}: {flat_have.get(k, '-')!r} there, {flat_want.get(k, '-')!r} here" for k in diff[:3])
    return f"{run_dir} holds a run of another configuration ({shown})"




def command(spec: RunSpec, run_dir: Path, threads: int, data_root: str | None = None,
            plugins: Sequence[str] = (), resume: bool = False) -> list[str]:
    """The ``streamvae run`` command line of one run (``--resume`` when a checkpoint is there)."""
    argv = [sys.executable, "-m", "streamvae.cli", "run"]
    if resume:  # the run's own config.yaml (threads included) is used again; plugins are named again
        argv += ["--resume", str(run_dir)]
    else:
        argv.append(spec.config)
        for o in (*spec.overrides, f"threads={threads}"):
            argv += ["--set", o]
        argv += ["--no-progress", "--out", str(run_dir)]
    for p in plugins:
        argv += ["--plugin", p]
    if data_root:
        argv += ["--data-root", str(Path(data_root).resolve())]
    return argv


def execute(job: dict, on_start: Callable[[subprocess.Popen], None] | None = None) -> dict:
    """Run one ``streamvae run`` process with its output appended to the run's log; its outcome.

    ``job``: ``{"name", "run_dir", "argv", "threads"}``. This is what each Slurm job runs (submitit
    pickles it) as well as the local executor's workers.
    """
    run_dir = Path(job["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / LOG
    host = socket.gethostname()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(job["threads"]),
           "MKL_NUM_THREADS": str(job["threads"])}
    t0 = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} on {host}: {shlex.join(job['argv'])}\n")
        f.flush()
        # a session of its own: a Ctrl-C in the terminal reaches the sweep, which forwards one SIGINT
        proc = subprocess.Popen(job["argv"], stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=job.get("new_session", True))
        if on_start is not None:
            on_start(proc)
        code = proc.wait()
    return {"name": job["name"], "returncode": code, "wall_s": time.perf_counter() - t0, "log": str(log),
            "host": host}


def _status(outcome: dict, run_dir: Path) -> str:
    if outcome.get("status"):
        return outcome["status"]
    code = outcome.get("returncode")
    if code == 0 and (run_dir / "results.json").exists():
        return "finished"
    if code == 130:
        return "interrupted"
    return "failed"


def headline(results: dict) -> str:
    """``ll_iw1000=-243.12`` (the run's likelihood, else its recon_sse) for the progress line."""
    from .evaluation.continual import ll_key

    key = ll_key(results) or ("recon_sse" if "recon_sse" in results else None)
    return f"{key}={results[key]:.2f}" if key else ""


def _last_line(path: str) -> str:
    try:
        lines = [line for line in Path(path).read_text(errors="replace").splitlines()
                 if line.strip() and not line.startswith("=== ")]
    except OSError:
        return ""
    return lines[-1].strip()[:200] if lines else ""


# ---------------------------------------------------------------------------------------------
# executors


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (not Linux)
        return os.cpu_count() or 1


def local_plan(jobs: int, n_cores: int, pending: int) -> tuple[int, int]:
    """``(runs at once, torch threads per run)``: at most ``jobs`` and one run per core, and
    ``runs x threads <= n_cores`` (oversubscribed OpenMP threads slow PyTorch down many times over)."""
    workers = max(1, min(jobs, n_cores, pending))
    return workers, max(1, n_cores // workers)


def run_local(jobs: list[dict], workers: int, report: Callable[[dict], None]) -> list[dict]:
    """Run the jobs ``workers`` at a time; a Ctrl-C forwards one SIGINT to each running run (which
    checkpoints and exits), starts no new one, and waits for them."""
    stop = threading.Event()
    live: dict[str, subprocess.Popen] = {}
    lock = threading.Lock()

    def one(job: dict) -> dict:
        if stop.is_set():
            return {"name": job["name"], "status": "not started", "returncode": None, "wall_s": 0.0, "log": ""}
        holder = writer_pid(Path(job["run_dir"]))
        if holder is not None:  # another sweep (or a run by hand) took it since this one was planned
            return {"name": job["name"], "status": "left to another process", "returncode": None, "wall_s": 0.0,
                    "log": "", "message": f"pid {holder} is writing it"}

        def started(proc: subprocess.Popen) -> None:
            with lock:
                live[job["name"]] = proc
            if stop.is_set():  # a Ctrl-C came while this one was starting
                proc.send_signal(signal.SIGINT)

        try:
            return execute(job, started)
        except OSError as e:  # the process could not start, or the log cannot be written
            return {"name": job["name"], "status": "failed", "returncode": None, "wall_s": 0.0, "log": "",
                    "message": f"could not start: {e}"}
        finally:
            with lock:
                live.pop(job["name"], None)

    outcomes: list[dict] = []
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep")
    futures: dict[Future, dict] = {pool.submit(one, job): job for job in jobs}
    reported: set[Future] = set()
    while len(reported) < len(futures):
        try:
            wait(set(futures) - reported, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in [f for f in futures if f.done() and f not in reported]:
                reported.add(fut)
                outcome = {**fut.result(), "job": futures[fut]}
                outcomes.append(outcome)
                report(outcome)
        except KeyboardInterrupt:  # a second one makes the runs stop at once (as for streamvae run)
            if not stop.is_set():
                print("sweep: interrupted; the running runs write a checkpoint and stop "
                      "(re-run the same command to resume them)", file=sys.stderr, flush=True)
            stop.set()
            with lock:
                for proc in live.values():
                    proc.send_signal(signal.SIGINT)
    pool.shutdown(wait=True)
    return outcomes


def _submitit():
    try:
        import submitit
    except ImportError:
        raise ConfigError("--executor slurm needs the optional package submitit: "
                          "pip install 'streamvae[slurm]' (or pip install submitit)") from None
    return submitit


def run_slurm(jobs: list[dict], out: Path, opts: SlurmOptions, report: Callable[[dict], None]) -> list[dict]:
    """Submit the jobs as one job array through submitit and wait for them; Ctrl-C cancels the
    unfinished ones (their checkpoints stay: re-running the command resumes them)."""
    submitit = _submitit()
    if opts.cluster == "slurm":
        import shutil

        if shutil.which("sbatch") is None:
            raise ConfigError("--executor slurm: sbatch is not on PATH (run the sweep on a Slurm login node; "
                              "--cluster local runs the same path on this machine)")
    executor = submitit.AutoExecutor(folder=out / ".submitit" / "%j", cluster=opts.cluster)
    extra = {}
    for item in opts.extra:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--slurm-arg {item!r} must look like KEY=VALUE (e.g. account=abc)")
        extra[key.strip().lstrip("-").replace("-", "_")] = value
    executor.update_parameters(
        name=f"streamvae-{out.name}"[:64], timeout_min=opts.time_min, cpus_per_task=opts.cpus_per_task,
        gpus_per_node=opts.gpus, mem_gb=opts.mem_gb, nodes=1, tasks_per_node=1,
        slurm_partition=opts.partition, slurm_array_parallelism=opts.array_parallelism,
        slurm_additional_parameters=extra or None, slurm_setup=list(opts.setup) or None)
    for job in jobs:
        job["new_session"] = False  # inside a job the scheduler signals the whole step
    submitted = executor.map_array(execute, jobs)
    by_id = {j.job_id: job for j, job in zip(submitted, jobs)}
    array = submitted[0].job_id.split("_")[0] if submitted else "-"
    print(f"sweep: submitted {len(submitted)} runs ({opts.cluster} job array {array}); "
          f"scheduler logs in {out / '.submitit'}", flush=True)
    outcomes, finished = [], set()
    poll = 1.0 if opts.cluster != "slurm" else 20.0
    try:
        for j in submitit.helpers.as_completed(submitted, poll_frequency=poll):
            job = by_id[j.job_id]
            try:
                outcome = j.result()
            except Exception as e:  # the job itself died (time limit, node failure, cancelled)
                first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                outcome = {"name": job["name"], "status": "failed", "returncode": None, "wall_s": 0.0,
                           "log": str(Path(job["run_dir"]) / LOG),
                           "message": f"job {j.job_id}: {first} (scheduler log: {j.paths.stderr})"}
            outcome["job"] = job
            finished.add(j.job_id)
            outcomes.append(outcome)
            report(outcome)
    except KeyboardInterrupt:
        left = [j for j in submitted if j.job_id not in finished]
        for j in left:
            j.cancel(check=False)
        print(f"sweep: interrupted; cancelled {len(left)} unfinished jobs (re-run the same command to resume them)",
              file=sys.stderr, flush=True)
        raise
    return outcomes


# ---------------------------------------------------------------------------------------------
# the sweep


def run_sweep(configs: Sequence[str], out: str | Path, seeds: int = 1, first_seed: int = 0,
              sets: Sequence[str] = (), jobs: int = 1, executor: str = "local", data_root: str | None = None,
              plugins: Sequence[str] = (), slurm: SlurmOptions | None = None) -> int:
    """Expand the grid, run what is not finished, write ``summary.md`` / ``summary.csv``.

    Returns:
        0 when every run finished, 1 when any failed, 130 when interrupted.
    """
    if executor not in ("local", "slurm"):
        raise ConfigError(f"--executor {executor!r} is not valid; choose one of: local, slurm")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    slurm = slurm or SlurmOptions()
    if executor == "slurm":
        _submitit()  # fail before anything is written when the extra is missing
        if slurm.cpus_per_task < 1 or slurm.time_min < 1 or slurm.gpus < 0 or slurm.array_parallelism < 1:
            raise ConfigError("--cpus-per-task, --time and --array-parallelism must be at least 1, --gpus at least 0")
        if slurm.cluster not in ("slurm", "local"):
            raise ConfigError(f"--cluster {slurm.cluster!r} is not valid; choose one of: slurm, local")
    plugins = [str(Path(p).resolve()) if p.endswith(".py") else p for p in plugins]
    specs = expand(configs, range(first_seed, first_seed + seeds), sets, plugins)
    return run_specs(specs, out, jobs, executor, data_root, plugins, slurm, summary=True)


def run_specs(specs: Sequence[RunSpec], out: str | Path, jobs: int = 1, executor: str = "local",
              data_root: str | None = None, plugins: Sequence[str] = (), slurm: SlurmOptions | None = None,
              summary: bool = False, ignore: Sequence[str] = RUNTIME_FIELDS, label: str = "sweep") -> int:
    """Run the runs ``specs`` name under ``out`` that are not finished: skip finished ones, resume
    interrupted ones, refuse (before anything runs) a folder that holds another configuration (its
    config.yaml differs outside ``ignore``). With ``summary``, ``summary.md`` / ``summary.csv`` too.
    ``streamvae sweep`` and ``streamvae reproduce`` both run through here.

    Returns:
        0 when every run finished, 1 when any failed, 130 when interrupted.
    """
    slurm = slurm or SlurmOptions()
    out = Path(out)
    problems = [p for p in (mismatch(spec, out / spec.name, ignore) for spec in specs) if p]
    if problems:  # another grid was run into this folder: refuse before anything runs or is rewritten
        more = f", and {len(problems) - 1} more run folders do too" if len(problems) > 1 else ""
        raise ConfigError(f"{problems[0]}{more}: give this {label} another --out")
    out.mkdir(parents=True, exist_ok=True)

    n = len(specs)
    todo: list[tuple[RunSpec, Path, bool]] = []  # (spec, run folder, resume)
    outcomes: list[dict] = []
    for spec in specs:
        run_dir = out / spec.name
        state = run_state(run_dir)
        if state == "finished":
            outcomes.append({"job": {"name": spec.name, "run_dir": str(run_dir)}, "status": "skipped",
                             "returncode": 0, "wall_s": 0.0, "log": ""})
        else:
            todo.append((spec, run_dir, state == "interrupted"))

    if executor == "local":
        workers, threads = local_plan(jobs, cores(), len(todo))
        if jobs > cores():
            print(f"{label}: --jobs {jobs} is more than the {cores()} cores here: {workers} runs at once", flush=True)
    else:
        workers, threads = len(todo), slurm.cpus_per_task
    job_list = [{"name": spec.name, "run_dir": str(run_dir), "threads": threads,
                 "argv": command(spec, run_dir, threads, data_root, plugins, resume)}
                for spec, run_dir, resume in todo]
    resumed = sum(r for _, _, r in todo)
    parallel = f"; {workers} at once x {threads} thread(s)" if executor == "local" and todo else ""
    print(f"{label}: {n} runs in {out} ({n - len(todo)} already done, {len(todo) - resumed} to start, "
          f"{resumed} to resume){parallel}", flush=True)

    counter = itertools.count(1)
    for outcome in outcomes:
        _print_outcome(outcome, next(counter), n)

    def report(outcome: dict) -> None:
        outcome["status"] = _status(outcome, Path(outcome["job"]["run_dir"]))
        _print_outcome(outcome, next(counter), n)

    interrupted = False
    try:
        if job_list:
            if executor == "local":
                outcomes += run_local(job_list, workers, report)
            else:
                outcomes += run_slurm(job_list, out, slurm, report)
    except KeyboardInterrupt:
        interrupted = True
    where = ""
    if summary:
        md, csv_path = write_summary(out, specs, outcomes)
        where = f"; summary: {md} and {csv_path}"
    damaged = damaged_results(out, specs)
    failed = [o for o in outcomes if o["status"] == "failed"]
    stopped = [o for o in outcomes if o["status"] in ("interrupted", "not started")]
    others = sum(o["status"] == "left to another process" for o in outcomes)
    print(f"{label}: {sum(o['status'] in ('finished', 'skipped') for o in outcomes)} of {n} runs done, "
          f"{len(failed)} failed, {len(stopped)} interrupted"
          f"{f', {others} left to another process' if others else ''}{where}", flush=True)
    for o in failed:
        print(f"  failed: {o['job']['name']}: {o.get('message') or _last_line(o['log'])}"
              + (f" (log: {o['log']})" if o.get("log") else ""), file=sys.stderr)
    for line in damaged:  # counted as missing in the summary; named here, one line each
        print(f"  damaged: {line}", file=sys.stderr)
    if interrupted or stopped:
        return 130
    return 1 if failed or damaged else 0


def damaged_results(out: Path, specs: Sequence[RunSpec]) -> list[str]:
    """One line for each run whose ``results.json`` exists but is not what a run writes."""
    from .report.runs import ReportError, read_results

    lines = []
    for spec in specs:
        try:
            read_results(out / spec.name / "results.json")
        except ReportError as e:
            lines.append(str(e))
    return lines


def _print_outcome(outcome: dict, i: int, n: int) -> None:
    run_dir = Path(outcome["job"]["run_dir"])
    status = outcome["status"]
    text = f"[{i}/{n}] {outcome['job']['name']}: {status}"
    if status in ("finished", "skipped") and (run_dir / "results.json").exists():
        from .report.runs import ReportError, read_results

        try:
            text += "  " + headline(read_results(run_dir / "results.json") or {})
        except (ReportError, KeyError, TypeError, ValueError):  # damaged: named once, after the summary
            pass
    if status == "left to another process":
        text += f" ({outcome.get('message', '')})"
    elif status != "skipped":
        text += f"  {outcome.get('wall_s', 0.0):.1f} s"
    if status == "failed":
        code = outcome.get("returncode")
        why = outcome.get("message") or _last_line(outcome.get("log", ""))
        text += (f" (exit {code})" if code is not None else "") + (f": {why}" if why else "")
        if outcome.get("log"):
            text += f"  log: {outcome['log']}"
    elif status == "interrupted":
        text += "  (checkpoint written; re-run to resume)"
    print(text, flush=True)


# ---------------------------------------------------------------------------------------------
# summary


def summary_table(out: Path, specs: Sequence[RunSpec], outcomes: Sequence[dict] = ()) -> tuple[list[str], list[list]]:
    """One row per configuration: its seeds, then mean, std and n of every headline metric.

    Reads each run's ``results.json``; runs without one (failed, interrupted) are counted, not averaged.
    """
    from .report.runs import ReportError, read_results
    from .report.tables import headline_metrics, mean_std

    status = {o["job"]["name"]: o["status"] for o in outcomes}
    groups: dict[str, list[RunSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.group, []).append(spec)
    per_group, names = [], []
    for group, members in groups.items():
        values: dict[str, list[float]] = {}
        seeds, missing = [], []
        for spec in members:
            try:
                results = read_results(out / spec.name / "results.json")  # checked: a damaged file is named
            except ReportError as e:
                results, why = None, f"damaged: {e}"
            else:
                why = status.get(spec.name, "not run")
            if results is None:
                missing.append(f"{spec.seed} ({why})")
                continue
            seeds.append(spec.seed)
            for k, v in headline_metrics(results).items():
                values.setdefault(k, []).append(v)
                if k not in names:
                    names.append(k)
        per_group.append((group, members, seeds, missing, values))
    header = ["configuration", "config", "overrides", "seeds", "n", "missing"]
    for k in names:
        header += [f"{k}_mean", f"{k}_std", f"{k}_n"]
    rows = []
    for group, members, seeds, missing, values in per_group:
        row = [group, members[0].config, " ".join(o for o in members[0].overrides if not o.startswith("seed=")),
               " ".join(map(str, seeds)), len(seeds), "; ".join(missing)]
        for k in names:
            mean, std, count = mean_std(values.get(k, []))
            row += [mean, std, count]
        rows.append(row)
    return header, rows


def _digits(metric: str) -> int:
    """Decimals shown for a metric: accuracies 3, counts and seconds 0 (1 for a spread), nats 2."""
    if metric.startswith("probe"):
        return 3
    if metric.startswith(("memory", "components", "clusters")) or metric.endswith("wall_s"):
        return 0
    return 2


def write_summary(out: Path, specs: Sequence[RunSpec], outcomes: Sequence[dict] = ()) -> tuple[Path, Path]:
    """``summary.csv`` (raw numbers) and ``summary.md`` (mean ± std (n) per metric, and every run's status)."""
    from .report.tables import fmt_mean_std, to_csv, to_markdown
    from .utils import atomic_write_text

    header, rows = summary_table(out, specs, outcomes)
    csv_path, md_path = out / "summary.csv", out / "summary.md"
    atomic_write_text(csv_path, to_csv(header, rows))
    metrics = [h[: -len("_mean")] for h in header if h.endswith("_mean")]
    md_header = ["configuration", "seeds"] + metrics
    md_rows = []
    for row in rows:
        cells = dict(zip(header, row))
        md_rows.append([cells["configuration"], f"{cells['seeds'] or '-'}" + (f" (missing: {cells['missing']})"
                                                                                if cells["missing"] else "")]
                       + [fmt_mean_std(cells[f"{m}_mean"], cells[f"{m}_std"], cells[f"{m}_n"], digits=_digits(m))
                          for m in metrics])
    status = {o["job"]["name"]: o for o in outcomes}
    run_rows = []
    for spec in specs:
        o = status.get(spec.name)
        state = o["status"] if o else ("finished" if (out / spec.name / "results.json").exists() else "not run")
        note = ""
        if o and o["status"] == "failed":
            note = (o.get("message") or _last_line(o.get("log", ""))) + (f" (log: {o['log']})" if o.get("log") else "")
        run_rows.append([spec.name, state, note])
    text = (f"# Sweep summary: {out}\n\n"
            f"{len(specs)} runs, {len(rows)} configurations. Each cell: mean ± standard deviation (number of "
            "seeds) over the runs of a configuration that finished (sample standard deviation, n - 1; none for "
            "one seed). Raw numbers: summary.csv.\n\n"
            f"{to_markdown(md_header, md_rows)}\n\n## Runs\n\n{to_markdown(['run', 'status', 'note'], run_rows)}\n")
    atomic_write_text(md_path, text)
    return md_path, csv_path


__all__ = ["RunSpec", "SlurmOptions", "split_values", "parse_sets", "expand", "command", "execute", "run_sweep", "run_specs",
           "summary_table", "write_summary", "cores"]
