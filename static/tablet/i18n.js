// The tablet app's words: Vietnamese first, English available. The choice is kept in
// localStorage (the shell page is the same for everyone, so the server cannot choose).

const KEY = "tablet.lang";

const vi = {
  "app.title": "Chi trả tại nhà",
  "header.waiting": "Chờ đồng bộ:",
  online: "Có mạng",
  offline: "Mất mạng",
  sync: "Đồng bộ",
  syncing: "Đang đồng bộ…",
  "noscript": "Ứng dụng cần bật JavaScript.",

  "pair.title": "Ghép thiết bị",
  "pair.explain": "Mở liên kết hoặc quét mã QR mà tổ trưởng đưa sau khi đăng ký máy này, hoặc dán mã ghép vào ô dưới đây.",
  "pair.label": "Mã ghép thiết bị",
  "pair.submit": "Ghép thiết bị",
  "pair.bad": "Mã ghép không đúng dạng. Hãy dán lại đúng mã hoặc liên kết tổ trưởng đưa.",
  "pair.needNetwork": "Cần có mạng để ghép thiết bị.",
  "pair.refused": "Máy chủ không nhận mã này: mã sai, đã hết hạn hoặc đã bị thu hồi.",
  "pair.otherUser": "Máy còn {n} mục chưa đồng bộ của {name}: chỉ ghép lại cho chính người này, để tiền đã trả không bị ghi tên người khác.",
  "pair.done": "Đã ghép thiết bị cho {name}.",
  "pair.queueKept": "{n} mục chưa đồng bộ vẫn được giữ trên máy. Ghép lại thiết bị để gửi chúng.",

  "route.none": "Chưa có tuyến",
  "route.noneExplain": "Tải tuyến được giao khi có mạng. Sau đó có thể chi trả cả khi mất mạng.",
  "route.load": "Tải tuyến",
  "route.reload": "Tải lại tuyến",
  "route.loaded": "Đã tải tuyến: {n} người.",
  "route.noneAssigned": "Chưa có tuyến nào được giao cho máy này.",
  "route.loadFailed": "Không tải được tuyến: {why}",
  "route.expired": "Tuyến đã hết hạn: dữ liệu tuyến đã được xoá khỏi máy. Các mục chưa đồng bộ vẫn được giữ.",
  "route.title": "Tuyến kỳ {period}",
  "route.summary": "{n} người · tuyến hết hạn {date}",
  "route.search": "Tìm theo tên, mã, thôn…",
  "route.noVillage": "(không rõ thôn)",
  "route.villageCount": "{n} người · còn {due} chưa trả",
  "route.noMatch": "Không có ai khớp với từ tìm.",

  "person.born": "Năm sinh",
  "person.code": "Mã",
  "person.village": "Thôn, xã",
  "person.address": "Địa chỉ",
  "person.due": "Khoản được nhận",
  "person.period": "Kỳ {p}",
  "person.total": "Tổng cộng",
  "person.nothingDue": "Không còn khoản nào phải trả.",
  "person.proxies": "Người được ủy quyền",
  "person.verifyPay": "Xác minh và chi trả",
  "person.noId": "Chưa có số CMND/CCCD trên hệ thống: máy tính bảng không xác minh được người này, nên không chi trả tại nhà được. Báo tổ trưởng.",
  "person.noIdSelf": "Người hưởng chưa có số CMND/CCCD trên hệ thống: chỉ người được ủy quyền còn hiệu lực nhận thay được.",
  "person.dead": "Đã báo người hưởng đã mất: không chi trả.",
  "person.gone": "Người này không còn trong tuyến trên máy.",
  "proxy.noRelation": "không rõ quan hệ",
  "proxy.validUntil": "hiệu lực đến {date}",
  "proxy.expiredOn": "HẾT HIỆU LỰC từ {date}",
  "proxy.noEnd": "không thời hạn",

  "status.due": "Chưa trả",
  "status.queued": "Đã trả · chờ đồng bộ",
  "status.synced": "Đã trả",
  "status.conflict": "Có thể trả hai lần",
  "status.rejected": "Bị từ chối",
  "status.deceased": "Đã mất",
  "status.visit-absent": "Vắng nhà",
  "status.visit-refused": "Từ chối",
  "status.visit-deceased": "Đã mất",
  "status.nothing": "Không có khoản",

  "back.list": "Danh sách",
  "back.person": "Quay lại",

  "visit.title": "Ghi nhận lần đến nhà",
  "visit.note": "Ghi chú (không bắt buộc)",
  "visit.absent": "Vắng nhà",
  "visit.refused": "Từ chối nhận",
  "visit.deceased": "Đã mất",
  "visit.recorded": "Đã ghi nhận: {what} — {name} (chờ đồng bộ).",
  "visit.toldPostOffice": "Đã báo người nhận đến bưu điện nhận tiền.",

  "history.title": "Lịch sử trên máy",
  "history.none": "Chưa có lần chi trả hay lần đến nhà nào.",
  "history.collector": "người nhận: {name}",
  "history.tempReceipt": "Xem phiếu tạm",
  "history.receipt": "Xem biên lai",

  "state.queued": "Chờ đồng bộ",
  "state.synced": "Đã đồng bộ · biên lai",
  "state.conflict": "Có thể đã trả hai lần — tổ trưởng sẽ xử lý",
  "state.rejected": "Máy chủ từ chối",
  "state.case": "hồ sơ #{id}",
  "state.visitDone": "Đã đồng bộ.",

  "verify.title": "Xác minh người nhận",
  "verify.for": "Chi trả cho: {name}",
  "verify.who": "Ai nhận tiền?",
  "verify.self": "Người hưởng tự nhận",
  "verify.proxy": "Người được ủy quyền",
  "verify.noIdOnFile": "chưa có số giấy tờ trên hệ thống, không xác minh được",
  "verify.proxyExpired": "giấy ủy quyền đã hết hạn ngày {date}: không được nhận thay",
  "verify.proxyNotYet": "giấy ủy quyền chỉ có hiệu lực từ ngày {date}: chưa được nhận thay",
  "verify.nobody": "Không có người nhận nào xác minh được.",
  "verify.byId": "Nhập số CMND/CCCD",
  "verify.idLabel": "Số CMND (9 số) hoặc CCCD (12 số) của người nhận",
  "verify.check": "Kiểm tra",
  "verify.idFormat": "Số giấy tờ phải gồm 9 hoặc 12 chữ số.",
  "verify.mismatch": "Số giấy tờ KHÔNG KHỚP với người nhận đã chọn. Không chi trả.",
  "verify.otherPerson": "Số giấy tờ này là của {name}: hãy chọn đúng người nhận.",
  "verify.byQr": "Quét mã QR trên CCCD",
  "verify.scan": "Mở máy ảnh quét mã QR",
  "verify.scanStop": "Tắt máy ảnh",
  "verify.scanning": "Đưa mã QR ở mặt trước CCCD vào khung hình…",
  "verify.qrRead": "Đã đọc mã QR.",
  "verify.qrLabel": "Hoặc dán nội dung mã QR (máy quét cầm tay)",
  "verify.qrUnreadable": "Đây không phải mã QR của CCCD.",
  "verify.noCamera": "Máy này không mở được máy ảnh (cần HTTPS). Hãy nhập số giấy tờ.",
  "verify.cameraRefused": "Không mở được máy ảnh: hãy cho phép dùng máy ảnh, hoặc nhập số giấy tờ.",
  "verify.faceNote": "Mã QR không có ảnh: hãy so khuôn mặt người nhận với ảnh trên thẻ.",
  "verify.by.id_number": "số giấy tờ nhập tay",
  "verify.by.id_qr": "mã QR trên CCCD",

  "pay.title": "Chi trả",
  "pay.amount": "Số tiền giao",
  "pay.beneficiary": "Người hưởng",
  "pay.collector": "Người nhận",
  "pay.verifiedBy": "Xác minh bằng",
  "pay.signature": "Chữ ký người nhận",
  "pay.signHere": "{name} ký vào khung dưới đây.",
  "pay.clear": "Xoá chữ ký",
  "pay.positionWait": "Đang lấy vị trí… (không bắt buộc)",
  "pay.positionOk": "Đã có vị trí.",
  "pay.positionNone": "Không có vị trí (không bắt buộc).",
  "pay.confirm": "Xác nhận đã giao tiền",
  "pay.cancel": "Huỷ",
  "pay.needSignature": "Cần chữ ký của người nhận trước khi xác nhận.",
  "pay.alreadyPaid": "Các khoản này đã được trả trên máy này: không trả lại lần nữa.",
  "pay.storeFailed": "Không lưu được vào máy. Chưa ghi nhận chi trả: đừng giao tiền, thử lại.",

  "receipt.tempTitle": "Phiếu chi trả tạm",
  "receipt.title": "Biên lai chi trả",
  "receipt.periods": "Kỳ",
  "receipt.time": "Thời gian",
  "receipt.number": "Số biên lai",
  "receipt.tempNote": "Phiếu tạm — số biên lai sẽ có khi đồng bộ",
  "receipt.done": "Xong, về danh sách",

  "queue.open": "Hàng chờ và lịch sử",
  "queue.title": "Hàng chờ và lịch sử",
  "queue.flagged": "Cần tổ trưởng xử lý",
  "queue.waiting": "Chờ đồng bộ",
  "queue.done": "Đã đồng bộ",
  "queue.none": "Không có.",

  "device.open": "Thiết bị",
  "device.title": "Thiết bị",
  "device.name": "Tên máy",
  "device.user": "Nhân viên",
  "device.point": "Đơn vị",
  "device.expires": "Mã ghép hết hạn",
  "device.unknown": "Chưa rõ thông tin thiết bị.",
  "device.signOut": "Đăng xuất và xoá dữ liệu",
  "device.signOutExplain": "Đăng xuất xoá tuyến, lịch sử và mã ghép khỏi máy này. Chỉ làm được khi mọi mục đã đồng bộ.",
  "device.signOutRefused": "Còn {n} mục chưa đồng bộ. Hãy đồng bộ trước khi đăng xuất.",
  "device.signedOut": "Đã đăng xuất: dữ liệu tuyến đã được xoá khỏi máy.",
  "device.revoked": "Thiết bị chưa được ghép hoặc đã bị thu hồi",

  "sync.offline": "Đang mất mạng: {n} mục vẫn được giữ trên máy và sẽ gửi khi có mạng.",
  "sync.failed": "Chưa đồng bộ được ({why}). {n} mục vẫn được giữ trên máy.",
  "sync.done": "Đã đồng bộ {n} mục. Còn chờ: {left}.",
  "sync.nothing": "Không có mục nào chờ đồng bộ.",
  "sync.conflict": "Có thể đã trả hai lần — tổ trưởng sẽ xử lý: {n} khoản, hồ sơ {cases}.",
  "sync.rejected": "Máy chủ từ chối {n} mục: xem ở Hàng chờ và lịch sử.",

  "problem.offline": "không kết nối được máy chủ",
  "problem.unauthorized": "thiết bị không được nhận",
  "problem.forbidden": "tài khoản không được phép",
  "problem.not_found": "không tìm thấy",
  "problem.server": "máy chủ đang lỗi",
  "problem.bad_answer": "câu trả lời không hợp lệ (mạng đăng nhập Wi-Fi?)",
  "problem.refused": "máy chủ từ chối",
  "problem.unknown": "lỗi không rõ",

  "offline.noWorker": "Không bật được chế độ dùng khi mất mạng trên trình duyệt này.",
};

const en = {
  "app.title": "Home delivery",
  "header.waiting": "Waiting to sync:",
  online: "Online",
  offline: "Offline",
  sync: "Sync",
  syncing: "Syncing…",
  "noscript": "This app needs JavaScript.",

  "pair.title": "Pair this device",
  "pair.explain": "Open the link or scan the QR code your supervisor gives after registering this tablet, or paste the pairing code below.",
  "pair.label": "Device pairing code",
  "pair.submit": "Pair device",
  "pair.bad": "That is not a pairing code. Paste the code or link from your supervisor.",
  "pair.needNetwork": "Pairing needs a network connection.",
  "pair.refused": "The server does not accept this code: wrong, expired or revoked.",
  "pair.otherUser": "{n} items of {name} still wait to sync: pair this tablet for that same person again, so money they paid is never recorded in someone else's name.",
  "pair.done": "Device paired for {name}.",
  "pair.queueKept": "{n} items not yet synced are kept on this tablet. Pair the device again to send them.",

  "route.none": "No route yet",
  "route.noneExplain": "Load your route while online. Then you can pay people even offline.",
  "route.load": "Load route",
  "route.reload": "Reload route",
  "route.loaded": "Route loaded: {n} people.",
  "route.noneAssigned": "No route is assigned to this device.",
  "route.loadFailed": "Could not load the route: {why}",
  "route.expired": "The route has expired: its data was wiped from this tablet. Items not yet synced are kept.",
  "route.title": "Route for {period}",
  "route.summary": "{n} people · route expires {date}",
  "route.search": "Search by name, code, village…",
  "route.noVillage": "(village unknown)",
  "route.villageCount": "{n} people · {due} still to pay",
  "route.noMatch": "Nobody matches the search.",

  "person.born": "Born",
  "person.code": "Code",
  "person.village": "Village, commune",
  "person.address": "Address",
  "person.due": "Due",
  "person.period": "Period {p}",
  "person.total": "Total",
  "person.nothingDue": "Nothing left to pay.",
  "person.proxies": "Authorised persons",
  "person.verifyPay": "Verify and pay",
  "person.noId": "No ID number on file: the tablet cannot verify this person, so they cannot be paid at home. Tell your supervisor.",
  "person.noIdSelf": "The beneficiary has no ID number on file: only a valid authorised person can collect.",
  "person.dead": "Reported as deceased: do not pay.",
  "person.gone": "This person is no longer on the route on this tablet.",
  "proxy.noRelation": "relationship unknown",
  "proxy.validUntil": "valid until {date}",
  "proxy.expiredOn": "EXPIRED since {date}",
  "proxy.noEnd": "no end date",

  "status.due": "To pay",
  "status.queued": "Paid · waiting to sync",
  "status.synced": "Paid",
  "status.conflict": "Possible double payment",
  "status.rejected": "Rejected",
  "status.deceased": "Deceased",
  "status.visit-absent": "Not at home",
  "status.visit-refused": "Refused",
  "status.visit-deceased": "Deceased",
  "status.nothing": "Nothing due",

  "back.list": "List",
  "back.person": "Back",

  "visit.title": "Record a visit",
  "visit.note": "Note (optional)",
  "visit.absent": "Not at home",
  "visit.refused": "Refused",
  "visit.deceased": "Deceased",
  "visit.recorded": "Recorded: {what} — {name} (waiting to sync).",
  "visit.toldPostOffice": "The person was told to collect at the post office.",

  "history.title": "History on this tablet",
  "history.none": "No payouts or visits yet.",
  "history.collector": "collector: {name}",
  "history.tempReceipt": "Show temporary receipt",
  "history.receipt": "Show receipt",

  "state.queued": "Waiting to sync",
  "state.synced": "Synced · receipt",
  "state.conflict": "Possibly paid twice — the supervisor will handle it",
  "state.rejected": "Refused by the server",
  "state.case": "case #{id}",
  "state.visitDone": "Synced.",

  "verify.title": "Verify the collector",
  "verify.for": "Payment to: {name}",
  "verify.who": "Who collects?",
  "verify.self": "The beneficiary in person",
  "verify.proxy": "Authorised person",
  "verify.noIdOnFile": "no ID number on file, cannot be verified",
  "verify.proxyExpired": "the authorisation expired on {date}: may not collect",
  "verify.proxyNotYet": "the authorisation is valid only from {date}: may not collect yet",
  "verify.nobody": "Nobody here can be verified.",
  "verify.byId": "Type the ID number",
  "verify.idLabel": "The collector's CMND (9 digits) or CCCD (12 digits)",
  "verify.check": "Check",
  "verify.idFormat": "An ID number has 9 or 12 digits.",
  "verify.mismatch": "The ID number does NOT MATCH the chosen collector. Do not pay.",
  "verify.otherPerson": "This ID number belongs to {name}: choose the right collector.",
  "verify.byQr": "Scan the CCCD's QR code",
  "verify.scan": "Open the camera to scan",
  "verify.scanStop": "Close the camera",
  "verify.scanning": "Hold the QR code on the front of the CCCD in view…",
  "verify.qrRead": "QR code read.",
  "verify.qrLabel": "Or paste the QR code's text (hand scanner)",
  "verify.qrUnreadable": "This is not a CCCD QR code.",
  "verify.noCamera": "This device cannot open a camera here (HTTPS needed). Type the ID number.",
  "verify.cameraRefused": "The camera could not be opened: allow the camera, or type the ID number.",
  "verify.faceNote": "The QR code has no photo: compare the collector's face with the card.",
  "verify.by.id_number": "typed ID number",
  "verify.by.id_qr": "CCCD QR code",

  "pay.title": "Pay",
  "pay.amount": "Amount to hand over",
  "pay.beneficiary": "Beneficiary",
  "pay.collector": "Collector",
  "pay.verifiedBy": "Verified by",
  "pay.signature": "Collector's signature",
  "pay.signHere": "{name} signs in the box below.",
  "pay.clear": "Clear signature",
  "pay.positionWait": "Getting the position… (optional)",
  "pay.positionOk": "Position recorded.",
  "pay.positionNone": "No position (optional).",
  "pay.confirm": "Confirm money handed over",
  "pay.cancel": "Cancel",
  "pay.needSignature": "The collector must sign before you confirm.",
  "pay.alreadyPaid": "These entitlements were already paid on this tablet: do not pay again.",
  "pay.storeFailed": "Could not save on the tablet. Nothing recorded: do not hand over money, try again.",

  "receipt.tempTitle": "Temporary payout slip",
  "receipt.title": "Payout receipt",
  "receipt.periods": "Periods",
  "receipt.time": "Time",
  "receipt.number": "Receipt no.",
  "receipt.tempNote": "Temporary slip — the receipt number comes with the sync",
  "receipt.done": "Done, back to the list",

  "queue.open": "Queue and history",
  "queue.title": "Queue and history",
  "queue.flagged": "For the supervisor",
  "queue.waiting": "Waiting to sync",
  "queue.done": "Synced",
  "queue.none": "None.",

  "device.open": "Device",
  "device.title": "Device",
  "device.name": "Device name",
  "device.user": "Staff",
  "device.point": "Payout point",
  "device.expires": "Pairing expires",
  "device.unknown": "Device details unknown.",
  "device.signOut": "Sign out and wipe data",
  "device.signOutExplain": "Signing out wipes the route, the history and the pairing code from this tablet. Only possible once everything is synced.",
  "device.signOutRefused": "{n} items are not synced yet. Sync before signing out.",
  "device.signedOut": "Signed out: the route's data was wiped from this tablet.",
  "device.revoked": "This device is not paired or was revoked",

  "sync.offline": "Offline: {n} items are kept on this tablet and will be sent when online.",
  "sync.failed": "Not synced ({why}). {n} items are kept on this tablet.",
  "sync.done": "Synced {n} items. Still waiting: {left}.",
  "sync.nothing": "Nothing is waiting to sync.",
  "sync.conflict": "Possibly paid twice — the supervisor will handle it: {n} payouts, case {cases}.",
  "sync.rejected": "The server refused {n} items: see Queue and history.",

  "problem.offline": "the server cannot be reached",
  "problem.unauthorized": "device not accepted",
  "problem.forbidden": "the account may not do this",
  "problem.not_found": "not found",
  "problem.server": "the server has a problem",
  "problem.bad_answer": "not a valid answer (a Wi-Fi login page?)",
  "problem.refused": "refused by the server",
  "problem.unknown": "unknown error",

  "offline.noWorker": "Offline use could not be switched on in this browser.",
};

const WORDS = { vi, en };

/** Return the language in use: "vi" unless English was chosen. */
export function getLang() {
  try {
    return localStorage.getItem(KEY) === "en" ? "en" : "vi";
  } catch (_err) {
    return "vi";
  }
}

/** Choose the language and remember it on this tablet. */
export function setLang(lang) {
  try {
    localStorage.setItem(KEY, lang === "en" ? "en" : "vi");
  } catch (_err) {
    // Private mode without storage: the choice lasts until the page closes.
  }
  document.documentElement.lang = getLang();
}

/** Translate a key, filling {name} placeholders. */
export function t(key, values = {}) {
  const words = WORDS[getLang()];
  const text = key in words ? words[key] : key in vi ? vi[key] : key;
  return text.replace(/\{(\w+)\}/g, (_m, name) => (name in values ? String(values[name]) : `{${name}}`));
}

/** Put translations into the page's fixed text: elements marked data-i18n. */
export function applyStatic(root) {
  document.documentElement.lang = getLang();
  root.querySelectorAll("[data-i18n]").forEach((el) => {
    el.textContent = t(el.dataset.i18n);
  });
  document.title = t("app.title");
}

export const KEYS = { vi: Object.keys(vi), en: Object.keys(en) };
