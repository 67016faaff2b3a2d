// The model a count of tokens is answered for (the count-tokens routes, which book nothing and so never
// reach the reservation): the one a generation of the same request would be served by when its first
// model has left (docs/models.md, "The life cycle"). A model past its shutdown date is passed to its
// successor, and a successor itself past its date to its own, at most three hops, as the reservation
// passes a generation (google_ai_reserve_models); a withdrawn model, one shut down with no successor
// row, or a successor a scoped token may not use is answered 404 model_withdrawn naming it.
import type { ModelProfile, NormalizedRequest } from "../contract.ts";
import { modelWithdrawn } from "./refusals.ts";
import { adaptToModel } from "../model/adapt.ts";
import type { ChainLink } from "../model/model-chain.ts";

/** The reservation's limit on successors followed from one model. */
const MAX_HOPS = 3;

export async function countedLink(
  profile: (model: string) => Promise<ModelProfile | null>,
  request: NormalizedRequest,
  first: ChainLink,
  mayUse: (model: string) => boolean,
): Promise<ChainLink> {
  let link = first;
  for (let hops = 0; link.profile.shutDown === true && link.profile.withdrawn !== true; hops++) {
    if (hops === MAX_HOPS) break;
    const name = link.profile.successor ?? null;
    const next = name === null ? null : await profile(name);
    if (next === null || !mayUse(next.model)) throw modelWithdrawn(link.model, name);
    link = { model: next.model, request: adaptToModel(next, request), profile: next };
  }
  if (link.profile.withdrawn === true || link.profile.shutDown === true) {
    throw modelWithdrawn(link.model, link.profile.successor ?? null);
  }
  return link;
}
