"""Place one call with pjsua2 (the independent SIP+media peer) and print what happened as JSON.

Run as a subprocess: ``python pjsua_call.py sip:1234@127.0.0.1:5060 [seconds]``. pjsua2 keeps
one library instance per process, so each call gets a fresh process.
"""

from __future__ import annotations

import json
import sys
import time

import pjsua2 as pj


class ObservedCall(pj.Call):  # type: ignore[misc]
    def __init__(self, account: pj.Account) -> None:
        super().__init__(account)
        self.states: list[tuple[str, int, str]] = []
        self.done = False

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        self.states.append((info.stateText, info.lastStatusCode, info.lastReason))
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.done = True


def main() -> int:
    target = sys.argv[1]
    limit = float(sys.argv[2]) if len(sys.argv) > 2 else 15.0
    endpoint = pj.Endpoint()
    endpoint.libCreate()
    config = pj.EpConfig()
    config.logConfig.level = 1
    config.logConfig.consoleLevel = 1
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    config.uaConfig.maxCalls = 4
    endpoint.libInit(config)
    transport = pj.TransportConfig()
    transport.port = 0
    transport.boundAddress = "127.0.0.1"
    endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    endpoint.audDevManager().setNullDev()
    endpoint.libStart()
    account_config = pj.AccountConfig()
    account_config.idUri = "sip:pjsua@127.0.0.1"
    account_config.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    account = pj.Account()
    account.create(account_config)
    call = ObservedCall(account)
    started = time.monotonic()
    call.makeCall(target, pj.CallOpParam(True))
    while not call.done and time.monotonic() - started < limit:
        endpoint.libHandleEvents(20)
    result = {
        "states": call.states,
        "done": call.done,
        "seconds": round(time.monotonic() - started, 2),
    }
    if not call.done:
        call.hangup(pj.CallOpParam(True))
        for _ in range(20):
            endpoint.libHandleEvents(20)
    print(json.dumps(result), flush=True)
    del call
    account.shutdown()
    endpoint.libDestroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
