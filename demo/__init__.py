"""`cosmos-sms demo`: the whole pipeline on this machine, with nothing set up beforehand."""
