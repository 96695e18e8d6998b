// Reading the CCCD's QR code with the camera: BarcodeDetector where the browser has
// it, otherwise frames drawn on a canvas and decoded by the vendored jsQR (Chromium on
// Linux, Firefox and older tablets have no BarcodeDetector).

const JSQR_URL = "/static/tablet/vendor/jsQR.js";
let jsqrLoading = null;

/** Load jsQR once, on first need (it is precached by the service worker). */
export function loadJsQr() {
  if (globalThis.jsQR) return Promise.resolve(globalThis.jsQR);
  if (!jsqrLoading) {
    jsqrLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = JSQR_URL;
      script.onload = () => (globalThis.jsQR ? resolve(globalThis.jsQR) : reject(new Error("jsQR")));
      script.onerror = () => {
        jsqrLoading = null;
        reject(new Error("jsQR could not be loaded"));
      };
      document.head.append(script);
    });
  }
  return jsqrLoading;
}

/** Decode a QR code in an ImageData with jsQR; return its text or null. */
export async function decodeImageData(imageData) {
  const jsQR = await loadJsQr();
  const found = jsQR(imageData.data, imageData.width, imageData.height, {
    inversionAttempts: "attemptBoth",
  });
  return found && found.data ? found.data : null;
}

/** Tell whether this browser can open a camera at all (secure context, a media API). */
export function cameraAvailable() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

async function nativeDetector() {
  if (!("BarcodeDetector" in globalThis)) return null;
  try {
    const formats = await globalThis.BarcodeDetector.getSupportedFormats();
    if (!formats.includes("qr_code")) return null;
    return new globalThis.BarcodeDetector({ formats: ["qr_code"] });
  } catch (_err) {
    return null;
  }
}

/**
 * Show the back camera in `video` and call `onText(text)` with the first QR text read.
 * Returns a function that stops the camera. Throws when the camera cannot be opened.
 */
export async function startScan(video, onText) {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } },
    audio: false,
  });
  let stopped = false;
  let timer = null;
  const stop = () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    stream.getTracks().forEach((track) => track.stop());
    video.srcObject = null;
  };
  video.srcObject = stream;
  video.setAttribute("playsinline", "");
  video.muted = true;
  await video.play();

  const detector = await nativeDetector();
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });

  const tick = async () => {
    if (stopped) return;
    try {
      let text = null;
      if (video.readyState >= 2 && video.videoWidth > 0) {
        if (detector) {
          const codes = await detector.detect(video);
          text = codes.length ? codes[0].rawValue : null;
        } else {
          // A frame at most 800 px wide: enough for a CCCD's QR held near, and fast.
          const scale = Math.min(1, 800 / video.videoWidth);
          canvas.width = Math.round(video.videoWidth * scale);
          canvas.height = Math.round(video.videoHeight * scale);
          context.drawImage(video, 0, 0, canvas.width, canvas.height);
          text = await decodeImageData(context.getImageData(0, 0, canvas.width, canvas.height));
        }
      }
      if (text && !stopped) {
        stop();
        onText(text);
        return;
      }
    } catch (_err) {
      // A frame that fails to decode is not an error: try the next one.
    }
    if (!stopped) timer = setTimeout(tick, 200);
  };
  tick();
  return stop;
}
