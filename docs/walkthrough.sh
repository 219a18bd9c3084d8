#!/usr/bin/env bash
# The golden path by hand, against a running `make run`: one household from survey to settled
# loan, with curl and jq. Each step prints a trimmed answer. Usage: docs/walkthrough.sh
set -euo pipefail
cd "$(dirname "$0")/.."
R=http://127.0.0.1:8001 E=http://127.0.0.1:8002 D=http://127.0.0.1:8003 S=http://127.0.0.1:8004
tok() { .venv/bin/everydoor token --role "$1" --scope "${2:-08001}"; }
OFFICER=$(tok commune_officer) CHAIR=$(tok commune_chair) AUDITOR=$(tok auditor VN)
post() { curl -sf -X POST -H "Authorization: Bearer $1" -H 'Content-Type: application/json' "$2" -d "${3:-{\}}"; }
get() { curl -sf -H "Authorization: Bearer $1" "$2"; }
until_ok() { for _ in $(seq 1 120); do if out=$("$@" 2>/dev/null) && [ -n "$out" ]; then echo "$out"; return; fi; sleep 0.5; done; echo "timed out: $*" >&2; return 1; }
step() { printf '\n== %s\n' "$1"; }
ID1=$(printf '0080780%05d' $((RANDOM % 100000))) ID2=$(printf '0081820%05d' $((RANDOM % 100000)))

step "1. register a rural household and record its survey"
HH=$(post "$OFFICER" $R/v1/households '{"area_type":"rural",
  "location":{"province_code":"08","commune_code":"08001","village":"Thôn Đồng Mán"},
  "members":[{"full_name":"Triệu Văn Páo","national_id":"'"$ID1"'","date_of_birth":"1979-03-02","sex":"male","relation":"head","ethnicity":"Dao"},
             {"full_name":"Bàn Thị Mây","national_id":"'"$ID2"'","date_of_birth":"1983-11-20","sex":"female","relation":"spouse","ethnicity":"Dao"}]}' \
  | jq -r .household_id)
echo "household $HH"
post "$OFFICER" $R/v1/households/$HH/surveys '{"survey_date":"2026-11-02","review_round":"2026-periodic",
  "income_per_capita_vnd":1200000,"deprivations":{"employment":false,"dependants":false,"nutrition":false,
  "health_insurance":true,"adult_education":false,"school_attendance":false,"housing_quality":false,
  "housing_area":true,"water_source":false,"latrine":true,"telecom":false,"information_access":false}}' \
  | jq -c '{survey_id, income_per_capita_vnd}'

step "2. eligibility classifies it, and says why"
until_ok get "$OFFICER" $E/v1/households/$HH/classification \
  | jq -c '{category, status, ruleset_id, line: .explanation.income_line_vnd,
            deprived: [.explanation.deprived[].code], count: .explanation.deprivation_count,
            threshold: .explanation.threshold}'

step "3. the officer posts the commune's list; the public page shows no national ID"
until_ok bash -c "curl -sf -H 'Authorization: Bearer $AUDITOR' $S/v1/households/$HH/timeline \
  | jq -e '.events[] | select(.type == \"eligibility.classification.decided.v1\")'" >/dev/null
POSTING=$(post "$OFFICER" $S/v1/postings '{"commune_code":"08001","review_round":"2026-periodic"}' | jq -r .posting_id)
echo "posting $POSTING: $S/public/postings/$POSTING"
PAGE=$(curl -sf $S/public/postings/$POSTING)
grep -c "Triệu Văn Páo" <<<"$PAGE" | sed 's/^/head of household shown: /'
grep -c "$ID1" <<<"$PAGE" | sed 's/^/national ID shown: /' || true

step "4. a resident complains through the public form; the officer resolves it"
curl -s -o /dev/null -w 'form post → %{http_code}\n' $S/public/postings/$POSTING/complaints \
  --data-urlencode category=wrongly_excluded --data-urlencode household=not_on_list \
  --data-urlencode "text=Nhà bà Lò Thị Sen ở thôn Nà Lừa rất khó khăn nhưng không có tên."
CID=$(get "$OFFICER" "$S/v1/complaints?commune_code=08001&posting_id=$POSTING" | jq -r '.[0].complaint_id // .items[0].complaint_id')
post "$OFFICER" $S/v1/complaints/$CID/assign '{"assignee":"officer-lan"}' >/dev/null
post "$OFFICER" $S/v1/complaints/$CID/resolve '{"outcome":"not_upheld","note":"Đã xác minh: thu nhập 3,1 triệu đồng/người/tháng."}' \
  | jq -c '{complaint_id, status, outcome}'

step "5. the chair closes and approves the posting: recognized, eligible for the poor-household loan"
post "$OFFICER" $S/v1/postings/$POSTING/close >/dev/null
post "$CHAIR" $S/v1/postings/$POSTING/approve | jq -c '{posting_id, status}'
until_ok bash -c "curl -sf -H 'Authorization: Bearer $OFFICER' $E/v1/households/$HH/classification | jq -ec 'select(.status == \"recognized\") | {category, status}'"
get "$OFFICER" $E/v1/households/$HH/programs | jq -c '[.programs[] | select(.program_code == "VBSP-POOR-LOAN" or .program_code == "VBSP-ESCAPED-LOAN") | {program_code, eligible, reason}]'

step "6. Women's Union group (with two neighbours already in it from the seed), application, review, confirmation"
GROUP=$(get "$OFFICER" "$D/v1/groups?commune_code=08001" | jq -r '.[0].group_id')
until_ok bash -c "curl -sf -H 'Authorization: Bearer $OFFICER' $D/v1/households/$HH | jq -e '.programs[\"VBSP-POOR-LOAN\"].eligible'" >/dev/null
post "$OFFICER" $D/v1/groups/$GROUP/members '{"household_id":"'"$HH"'"}' | jq -c '{group_id, member_count}'
APP=$(post "$OFFICER" $D/v1/applications '{"household_id":"'"$HH"'","programme_code":"VBSP-POOR-LOAN","amount_vnd":50000000,"term_months":36,"purpose":"Nuôi bò sinh sản","group_id":"'"$GROUP"'"}' | jq -r .application_id)
post "$OFFICER" $D/v1/applications/$APP/group-review '{"decision":"approve","note":"Họp tổ 20/11: nhất trí"}' | jq -c '{application_id, status}'
post "$CHAIR" $D/v1/applications/$APP/confirm | jq -c '{status, instruction: .instruction.instruction_id}'

step "7. the reference bank partner accepts and settles the instruction"
until_ok bash -c "curl -sf -H 'Authorization: Bearer $OFFICER' $D/v1/applications/$APP | jq -ec 'select(.instruction.status == \"settled\") | {status, instruction: {status: .instruction.status, bank_reference: .instruction.bank_reference, history: [.instruction.history[].status]}}'"

step "8. the timeline: every step, with correlation, causation and trace ids"
sleep 1
get "$AUDITOR" $S/v1/households/$HH/timeline \
  | jq -r '.events[] | [.time[11:19], .type, (.causation_id // "-")[0:8], .trace_id[0:8], .summary.en[0:60]] | @tsv'
echo "tree view: $S/v1/households/$HH/timeline?view=tree"
