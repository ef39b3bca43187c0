"""--record: a day recorded while it runs replays to the same trading decisions (the recorder sits in the feed
process, where live ticks arrive, so a live day is recorded the same way), warm-up from history included: the
candles the recorded run fed its strategies are kept beside the recording and fed again by its replay."""
from __future__ import annotations

from tests.daemon_harness import rows, run_daemon, short_day_config

SIGNALS = "SELECT signal_id, outcome FROM stock_signals ORDER BY signal_id"
ORDERS = "SELECT symbol, side, quantity, failure_tag FROM orders ORDER BY id"


def test_a_recorded_day_replays_to_the_same_signals_and_orders(tmp_path):
    cfg = short_day_config(tmp_path, mode="signals_only")
    env = {"HOST_SERVER": "http://127.0.0.1:9"}
    rec = tmp_path / "day.csv.gz"
    first = run_daemon(cfg, f"sqlite:///{tmp_path / 'a.sqlite'}", env, ["--record", str(rec)])
    assert first.returncode == 0, first.output[-3000:]
    assert "recorded" in first.output and rec.exists()
    dispatched = int(first.output.split(" ticks dispatched")[0].rsplit(" ", 1)[1])

    # warm-up from history is on (config.yaml): the recorded run's candles are kept beside the recording
    assert "strategies start warm" in first.output and "starts cold" not in first.output
    assert (tmp_path / "day.csv.gz.warmup.json").exists()
    signals = rows(first.db_url, SIGNALS)
    assert len(signals) > 5
    for name in ("b", "c"):  # replayed twice, each time as the recorded run traded, warm from the same candles
        again = run_daemon(cfg, f"sqlite:///{tmp_path / f'{name}.sqlite'}", env, ["--replay", str(rec)])
        assert again.returncode == 0, again.output[-3000:]
        assert f" {dispatched} ticks dispatched" in again.output
        assert "warm-up candles of the recorded run" in again.output and "starts cold" not in again.output
        assert rows(again.db_url, SIGNALS) == signals
        assert rows(again.db_url, ORDERS) == rows(first.db_url, ORDERS)


def test_a_recording_without_its_warm_up_candles_replays_cold_and_says_so(tmp_path):
    cfg = short_day_config(tmp_path, mode="signals_only")
    env = {"HOST_SERVER": "http://127.0.0.1:9"}
    rec = tmp_path / "day.csv.gz"
    assert run_daemon(cfg, f"sqlite:///{tmp_path / 'a.sqlite'}", env, ["--record", str(rec)]).returncode == 0
    (tmp_path / "day.csv.gz.warmup.json").unlink()
    again = run_daemon(cfg, f"sqlite:///{tmp_path / 'b.sqlite'}", env, ["--replay", str(rec)])
    assert again.returncode == 0, again.output[-3000:]
    assert "LT: strategy mac starts cold (the replayed file" in again.output
    assert "has no history of earlier days: no day.csv.gz.warmup.json beside it): 0 of the 22 candles of 60 s it " \
        "needs; ready at about 09:37 IST" in again.output


def test_record_to_an_unknown_file_type_is_refused_before_start(tmp_path):
    cfg = short_day_config(tmp_path, mode="signals_only")
    run = run_daemon(cfg, f"sqlite:///{tmp_path / 'a.sqlite'}", {"HOST_SERVER": "http://127.0.0.1:9"},
                     ["--record", str(tmp_path / "day.txt")])
    assert run.returncode == 2
    assert "--record" in run.output and "Traceback" not in run.output
