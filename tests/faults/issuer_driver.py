"""A stand-alone issuer process for fault tests: submit a job (idempotently), then anchor until
everything is confirmed. Killed and restarted by the tests; its state lives in ECERT_HOME.

    python issuer_driver.py AGENCY TYPE RECORDS.jsonl IDEMPOTENCY_KEY
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from issuer.records import read_records
from issuer.runtime import IssuerRuntime


def main() -> None:
    agency, type_code, records_path, key = sys.argv[1:5]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    runtime = IssuerRuntime.open()
    try:
        runtime.register_agency(agency)
        records = list(read_records(Path(records_path)))
        job = runtime.service.submit(agency, type_code, records, type_name="营业执照", idempotency_key=key)
        print(f"job {job.id} stored", flush=True)
        import threading

        stop = threading.Event()
        worker = threading.Thread(
            target=runtime.worker.run_forever, args=(stop,), kwargs={"poll_s": 0.05}, daemon=True
        )
        worker.start()
        while runtime.worker.outstanding():
            stop.wait(0.1)
        stop.set()
        worker.join()
        print("all confirmed", flush=True)
    finally:
        runtime.close()


if __name__ == "__main__":
    main()
