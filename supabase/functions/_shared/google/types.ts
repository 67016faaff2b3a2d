// The Gemini REST shapes the gateway sends: what llm-invoke builds and the Google client posts.

/** Text-only Gemini content; the gateway does not forward other part kinds (images, tools). */
export interface TextPart {
  text: string;
}
export interface Content {
  role: "user" | "model";
  parts: TextPart[];
}

export interface GenerationConfig {
  temperature?: number;
  maxOutputTokens?: number;
  topP?: number;
  topK?: number;
  stopSequences?: string[];
  responseMimeType?: string;
}

/** What is sent to Google for one request. */
export interface GoogleRequest {
  model: string;
  contents: Content[];
  systemInstruction?: string;
  generationConfig: GenerationConfig;
}
