import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# Import what the first sale would (the x402 package's EVM scheme pulls in
# web3), then move every object made so far out of the garbage collector's
# reach: they live as long as the process, and a full collection scanning
# them all paused a request for 100 ms and more now and then.
from x402.mechanisms.evm.exact import ExactEvmServerScheme  # noqa: E402, F401

gc.freeze()
