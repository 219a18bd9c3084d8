"""Reference bank partner: consumes disbursement instructions, answers with statuses.

Written as the example a bank's integrator copies: it depends only on aiokafka, the contract
module `services.disbursement.events` and the CloudEvents envelope `shared.envelope`.
"""
