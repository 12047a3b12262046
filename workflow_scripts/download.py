"""Rule `download`: a URL → downloads/<name>/ (checked against its checksum, unpacked)."""

import json

from lmao.download import download
from lmao.logs import tee_stderr

sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)
print(json.dumps(download(sm.params.spec, sm.output.folder)))
