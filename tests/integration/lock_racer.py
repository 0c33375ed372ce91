"""One racer of the lock race: light to import, so that spawned processes start fast."""

from genaug.serving.lease import Lease, LockedError
from genaug.serving.ledger import BUCKET
from genaug.serving.records import Records


def race(config, name: str, index: int, rounds: int, barrier, results) -> None:
    """Try for the lock of ``name`` once per round, all racers released together; the
    round's winner frees it after every racer has tried. Puts (index, rounds won)."""
    records = Records(BUCKET, config)
    won = []
    try:
        for round_ in range(rounds):
            barrier.wait(timeout=60)  # a racer that died breaks the barrier instead of hanging the rest
            try:
                lease = Lease(records, name, f"racer-{index}").acquire()
                won.append(round_)
            except LockedError:
                lease = None
            barrier.wait(timeout=60)
            if lease is not None:
                lease.release()
    finally:
        results.put((index, won))
