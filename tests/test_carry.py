"""``streamvae carry``: one compacted file per unfinished run, restored bit for bit."""
from __future__ import annotations

import lzma
import shutil

import pytest
import torch

from streamvae import carry
from streamvae.cli import main
from streamvae.errors import ConfigError
from streamvae.utils import load_checkpoint

from .conftest import REPO


def _bits_equal(a, b, path="") -> int:
    """Asserts that two checkpoints are equal, every tensor bit for bit; returns the number of tensors."""
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert list(a) == list(b), path
        return sum(_bits_equal(a[k], b[k], f"{path}/{k}") for k in a)
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        return sum(_bits_equal(x, y, f"{path}/{i}") for i, (x, y) in enumerate(zip(a, b)))
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert torch.equal(a.reshape(-1).contiguous().view(torch.uint8),
                           b.reshape(-1).contiguous().view(torch.uint8)), path
        return 1
    assert a == b or (a != a and b != b), path
    return 0


def _find(obj, key) -> int:
    if isinstance(obj, dict):
        return int(key in obj) + sum(_find(v, key) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_find(v, key) for v in obj)
    return 0


@pytest.fixture()
def unfinished(tmp_path, data_root):
    """An OCM smoke run stopped with a checkpoint (results.json removed: the run is 'unfinished')."""
    run = tmp_path / "ocm-s0"
    assert main(["run", str(REPO / "configs/split_fashion/ocm.yaml"), "--set", "budget=smoke", "--no-progress",
                 "--data-root", data_root, "--out", str(run)]) == 0
    (run / "results.json").unlink()
    return run


def test_pack_and_unpack_restore_the_checkpoint_bit_for_bit(unfinished, tmp_path):
    packed = carry.pack(unfinished, tmp_path / "carry" / "ocm-s0.carry")
    inside = carry.read(packed)
    assert _find(inside["checkpoint"], carry.U8_KEY) >= 1  # the memories' images travel as uint8
    assert _find(inside["checkpoint"], carry.SHUFFLE_KEY) >= 1
    assert set(inside["files"]) >= {"config.yaml", "metrics.jsonl", "train.jsonl"}
    restored = tmp_path / "restored"
    arrival = carry.unpack(packed, restored)
    assert arrival == load_checkpoint(unfinished / "checkpoint.pt")["arrival"]
    assert _bits_equal(load_checkpoint(unfinished / "checkpoint.pt"), load_checkpoint(restored / "checkpoint.pt")) > 10
    for name in inside["files"]:
        assert (restored / name).read_bytes() == (unfinished / name).read_bytes()
    assert packed.stat().st_size < (unfinished / "checkpoint.pt").stat().st_size


def test_only_exact_k_over_255_tensors_become_uint8():
    images = torch.randint(0, 256, (300, 784), dtype=torch.uint8).to(torch.float32) / 255
    weights = torch.randn(300, 784)
    near = images.clone()
    near[0, 0] = torch.nextafter(near[0, 0], torch.tensor(2.0))  # one value off by one ulp
    state = {"images": images, "weights": weights, "near": near, "step": torch.tensor(3.0), "n": 5}
    small = carry.compact(state)
    assert carry.U8_KEY in small["images"] and carry.U8_KEY not in small["near"]
    assert carry.SHUFFLE_KEY in small["weights"] and carry.SHUFFLE_KEY in small["near"]
    assert _bits_equal(state, carry.expand(small)) == 4


def test_unpack_never_overwrites_a_later_or_finished_run_and_refuses_foreign_files(unfinished, tmp_path):
    packed = carry.pack(unfinished, tmp_path / "a.carry")
    with pytest.raises(ConfigError, match="not overwritten"):
        carry.unpack(packed, unfinished)  # the same arrival is there already
    done = tmp_path / "done"
    shutil.copytree(unfinished, done)
    (done / "results.json").write_text("{}")
    with pytest.raises(ConfigError, match="finished"):
        carry.unpack(packed, done)
    with pytest.raises(ConfigError, match="finished"):
        carry.pack(done, tmp_path / "b.carry")
    bad = tmp_path / "bad.carry"
    bad.write_bytes(packed.read_bytes()[:1000])
    with pytest.raises(ConfigError, match="not a carried run|truncated"):
        carry.read(bad)
    other = tmp_path / "other.carry"
    import io

    buf = io.BytesIO()
    torch.save({"format": "something-else"}, buf)
    other.write_bytes(lzma.compress(buf.getvalue()))
    with pytest.raises(ConfigError, match="not a streamvae-carry file"):
        carry.read(other)


def test_show_says_the_arrival_steps_precision_and_device(unfinished, tmp_path, capsys):
    packed = carry.pack(unfinished, tmp_path / "ocm-s0.carry")
    ckpt = load_checkpoint(unfinished / "checkpoint.pt")
    assert main(["carry", "show", str(packed)]) == 0
    out = capsys.readouterr().out
    assert f"arrival {ckpt['arrival']}, {ckpt['learner']['steps']:,} steps; precision {ckpt['precision']}; device cpu" in out
    switched = {"learner": {"steps": 1000, "precisions": [[0, "bf16"], [459, "fp32"]], "devices": [[0, "cpu"]]}}
    assert carry.how_it_ran(switched) == "1,000 steps; precision bf16 from arrival 0, fp32 from arrival 459; device cpu"


def test_a_carried_file_whose_run_is_recorded_is_named_as_left_over(unfinished, tmp_path, capsys):
    from streamvae.reproduce import leftover_carries

    carried = tmp_path / "carry"
    packed = carry.pack(unfinished, carried / "ocm-s0.carry")
    results = tmp_path / "results"
    record = results / "ocm-table1" / "smoke" / "ocm-s0"
    record.mkdir(parents=True)
    shutil.copy(unfinished / "config.yaml", record / "config.yaml")
    assert carry.recorded_at(packed, results) is None  # a record without results.json is no finished run
    assert leftover_carries(carried, results) == []
    other = results / "ocm-table1" / "smoke" / "ocm-s1"  # another seed's finished record is another run
    other.mkdir()
    (other / "config.yaml").write_text((unfinished / "config.yaml").read_text().replace("seed: 0", "seed: 1"))
    (other / "results.json").write_text("{}")
    assert carry.recorded_at(packed, results) is None
    (record / "results.json").write_text("{}")
    # an accepted config change (threads, progress) after packing does not hide the record
    (record / "config.yaml").write_text((unfinished / "config.yaml").read_text().replace("threads: 0", "threads: 1"))
    assert carry.recorded_at(packed, results) == record
    assert leftover_carries(carried, results) == [
        f"{packed}: its run is finished and recorded in {record}: remove it (git rm {packed})"]
    assert main(["carry", "show", str(packed), "--results", str(results)]) == 0
    assert f"recorded in {record}: remove it (git rm {packed})" in capsys.readouterr().out


def test_no_carried_file_in_the_repository_belongs_to_a_recorded_run():
    """A carried run's file goes in the commit that records the run (issue 26: none remains in the tree)."""
    from streamvae.reproduce import leftover_carries

    assert leftover_carries(REPO / "carry", REPO / "results") == []
