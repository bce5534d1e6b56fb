"""A stand-alone issuer process for the proposal crash test: `issue N` submits N records and
anchors them; `run` runs the issuer's worker (anchoring, then after each pass the status change
outbox, as `ecert serve issuer` does) until no approved proposal is left. Killed and restarted by
the test; its state lives in ECERT_HOME.

    python proposal_driver.py AGENCY TYPE issue N
    python proposal_driver.py AGENCY TYPE run
"""

from __future__ import annotations

import logging
import sys
import threading

from issuer.benchmark import make_records
from issuer.runtime import IssuerRuntime


def main() -> None:
    agency, type_code, command = sys.argv[1:4]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    runtime = IssuerRuntime.open()
    try:
        runtime.register_agency(agency)
        if command == "issue":
            job = runtime.service.submit(
                agency, type_code, make_records(int(sys.argv[4])), type_name="营业执照"
            )
            runtime.worker.run_until_idle(job_ids=[job.id], timeout_s=120, poll_s=0.02)
            print("issued", flush=True)
            return
        stop = threading.Event()
        worker = threading.Thread(
            target=runtime.worker.run_forever, args=(stop,), kwargs={"poll_s": 0.05}, daemon=True
        )
        worker.start()
        print("worker running", flush=True)
        while runtime.proposal_sender.outstanding():
            stop.wait(0.1)
        stop.set()
        worker.join()
        print("all proposals done", flush=True)
    finally:
        runtime.close()


if __name__ == "__main__":
    main()
