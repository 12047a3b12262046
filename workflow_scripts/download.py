"""Rule `download`: a URL → downloads/<name>/ (checked against its checksum, unpacked)."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

import json

from lmao.download import download
from lmao.jobs import DownloadJob

print(json.dumps(download(DownloadJob.from_params(sm.params.spec).spec, sm.output.folder)))
